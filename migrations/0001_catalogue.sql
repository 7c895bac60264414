-- Catalogue: periods, administrative units and their lineage, agencies, indicators.
-- Rules the data must obey are constraints here, not only checks in Python.

-- Periods in SDMX notation: 2026, 2026-S1, 2026-Q3, 2026-M10.
CREATE FUNCTION is_period(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p ~ '^[0-9]{4}(-(S[12]|Q[1-4]|M(0[1-9]|1[0-2])))?$';

-- 'A' (annual), 'S', 'Q' or 'M'.
CREATE FUNCTION period_frequency(p text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN length(p) = 4 THEN 'A' ELSE substr(p, 6, 1) END;

CREATE FUNCTION period_start(p text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN make_date(substr(p, 1, 4)::int, CASE
        WHEN length(p) = 4 THEN 1
        WHEN substr(p, 6, 1) = 'S' THEN (substr(p, 7, 1)::int - 1) * 6 + 1
        WHEN substr(p, 6, 1) = 'Q' THEN (substr(p, 7, 1)::int - 1) * 3 + 1
        ELSE substr(p, 7, 2)::int END, 1);

-- Accent-folded lower case, so "ha noi" finds "Hà Nội" without the unaccent extension.
CREATE FUNCTION fold_text(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lower(translate(t,
        'ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúýĂăĐđĨĩŨũƠơƯưẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ',
        'AAAAEEEIIOOOOUUYaaaaeeeiioooouuyAaDdIiUuOoUuAaAaAaAaAaAaAaAaAaAaAaAaEeEeEeEeEeEeEeEeIiIiOoOoOoOoOoOoOoOoOoOoOoOoUuUuUuUuUuUuUuYyYyYyYy'));

CREATE TABLE admin_unit (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'VN' for the nation, two digits for provinces, three for (historic) districts, five for communes.
    code        text NOT NULL CHECK (code ~ '^(VN|[0-9]{2}|[0-9]{3}|[0-9]{5})$'),
    name_vi     text NOT NULL CHECK (name_vi <> ''),
    name_en     text NOT NULL CHECK (name_en <> ''),
    level       text NOT NULL CHECK (level IN ('NATION', 'PROVINCE', 'DISTRICT', 'COMMUNE')),
    kind        text,                       -- city, province, ward, commune: the legal form
    parent_id   integer REFERENCES admin_unit (id),
    valid_from  date NOT NULL,
    valid_to    date,                       -- last day in force; NULL while in force
    legal_basis text,
    synthetic   boolean NOT NULL DEFAULT false,
    search_text text GENERATED ALWAYS AS (fold_text(name_vi || ' ' || name_en)) STORED,
    UNIQUE (code, valid_from),
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CHECK ((level = 'NATION') = (parent_id IS NULL)),
    CHECK ((level = 'NATION') = (code = 'VN')),
    CHECK (level <> 'PROVINCE' OR code ~ '^[0-9]{2}$'),
    CHECK (level <> 'COMMUNE' OR code ~ '^[0-9]{5}$')
);
CREATE INDEX admin_unit_parent ON admin_unit (parent_id);

-- One code names at most one unit on any day (the 2025 reform reused codes such as 08).
CREATE FUNCTION admin_unit_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM admin_unit u
        WHERE u.code = NEW.code AND u.id <> NEW.id
          AND daterange(u.valid_from, u.valid_to, '[]') && daterange(NEW.valid_from, NEW.valid_to, '[]')
    ) THEN
        RAISE EXCEPTION 'unit code % is already in force between % and %',
            NEW.code, NEW.valid_from, coalesce(NEW.valid_to::text, 'now')
            USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER admin_unit_no_overlap AFTER INSERT OR UPDATE ON admin_unit
    FOR EACH ROW EXECUTE FUNCTION admin_unit_no_overlap();

CREATE TABLE unit_lineage (
    old_unit_id    integer NOT NULL REFERENCES admin_unit (id),
    new_unit_id    integer NOT NULL REFERENCES admin_unit (id),
    relation       text NOT NULL CHECK (relation IN ('MERGED_INTO', 'RENAMED', 'SPLIT', 'UNCHANGED')),
    effective_date date NOT NULL,
    legal_basis    text,
    PRIMARY KEY (old_unit_id, new_unit_id),
    CHECK (old_unit_id <> new_unit_id)
);
CREATE INDEX unit_lineage_new ON unit_lineage (new_unit_id);

CREATE TABLE agency (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,31}$'),
    short_code  text NOT NULL,
    name_vi     text NOT NULL CHECK (name_vi <> ''),
    name_en     text NOT NULL CHECK (name_en <> ''),
    kind        text NOT NULL CHECK (kind IN ('GOVERNMENT_OFFICE', 'MINISTRY', 'MINISTERIAL_AGENCY',
                                              'PROVINCIAL_COMMITTEE', 'PARTNER')),
    unit_id     integer REFERENCES admin_unit (id),
    valid_from  date NOT NULL,
    valid_to    date,
    legacy_eid  text,
    notes       text,
    CHECK ((kind = 'PROVINCIAL_COMMITTEE') = (unit_id IS NOT NULL)),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE TABLE agency_lineage (
    predecessor_code text NOT NULL REFERENCES agency (code),
    successor_code   text NOT NULL REFERENCES agency (code),
    effective_date   date NOT NULL,
    PRIMARY KEY (predecessor_code, successor_code)
);

-- The nine fields of the national statistical indicator set (Decision 293/QĐ-TTg).
CREATE TABLE indicator_field (
    code    text PRIMARY KEY CHECK (code ~ '^[a-z_]+$'),
    name_vi text NOT NULL,
    name_en text NOT NULL
);

CREATE TABLE dimension (
    code    text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z_]*$'),
    name_vi text NOT NULL,
    name_en text NOT NULL
);

-- Every dimension has the total '_T'; observations write totals by leaving the dimension out.
CREATE TABLE dimension_value (
    dimension_code text NOT NULL REFERENCES dimension (code),
    code           text NOT NULL CHECK (code ~ '^([A-Z0-9]+|_T)$'),
    name_vi        text NOT NULL,
    name_en        text NOT NULL,
    PRIMARY KEY (dimension_code, code)
);

CREATE TABLE indicator (
    code               text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,63}$'),
    name_vi            text NOT NULL CHECK (name_vi <> ''),
    name_en            text NOT NULL CHECK (name_en <> ''),
    definition         text,
    field              text NOT NULL REFERENCES indicator_field (code),
    unit_of_measure    text NOT NULL,
    value_type         text NOT NULL CHECK (value_type IN ('DECIMAL', 'INTEGER')),
    decimals           smallint NOT NULL CHECK (decimals BETWEEN 0 AND 6),
    periodicity        text NOT NULL CHECK (periodicity IN ('M', 'Q', 'S', 'A')),
    aggregation        text NOT NULL CHECK (aggregation IN ('SUM', 'AVERAGE', 'LAST', 'NONE', 'RATIO')),
    numerator_code     text REFERENCES indicator (code),
    denominator_code   text REFERENCES indicator (code),
    ratio_factor       numeric,
    responsible_agency text NOT NULL REFERENCES agency (code),
    sensitivity        text NOT NULL DEFAULT 'PUBLIC' CHECK (sensitivity IN ('PUBLIC', 'INTERNAL', 'RESTRICTED')),
    source             text NOT NULL DEFAULT 'hub' CHECK (source ~ '^[a-z][a-z0-9_-]*$'),
    source_note        text,
    search_text        text GENERATED ALWAYS AS (fold_text(code || ' ' || name_vi || ' ' || name_en)) STORED,
    -- A rate is aggregated as sum(numerator) / sum(denominator) * factor, never as a mean of rates.
    CHECK ((aggregation = 'RATIO') = (numerator_code IS NOT NULL AND denominator_code IS NOT NULL
                                      AND ratio_factor IS NOT NULL)),
    CHECK (numerator_code IS DISTINCT FROM code AND denominator_code IS DISTINCT FROM code)
);
CREATE INDEX indicator_field_idx ON indicator (field);

CREATE TABLE indicator_dimension (
    indicator_code text NOT NULL REFERENCES indicator (code),
    dimension_code text NOT NULL REFERENCES dimension (code),
    position       smallint NOT NULL,
    PRIMARY KEY (indicator_code, dimension_code),
    UNIQUE (indicator_code, position)
);
