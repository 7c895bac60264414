-- Each hub process keeps in memory which indicators a federated source serves (the point lookup
-- then needs no second relation in its statement; resolvers/federated_indicators.py). Any change to
-- the indicator table tells every process to read that again: the notification is sent at commit,
-- once per statement, and carries nothing but the table's name.
CREATE FUNCTION notify_catalogue_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hub_catalogue', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER indicator_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON indicator
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalogue_change();
