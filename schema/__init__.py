"""GraphQL types and the schema object; maps rows to GraphQL, holds no SQL."""
