-- A file whose columns the account has imported before gets that import's mapping preset
-- (`import.preview` answers it as `remembered`). The mapping is the import's own plan, so
-- nothing new is written: imports are found by their header's columns, in any order.

-- The file's column names as a set (sorted byte-wise, so the key does not depend on the
-- database's collation), digested so that an index entry fits whatever the header's length.
CREATE FUNCTION header_key(header jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (SELECT md5(coalesce(jsonb_agg(name ORDER BY name COLLATE "C"), '[]')::text)
            FROM jsonb_array_elements_text(header) AS name);

CREATE INDEX imports_by_header ON imports (account_id, header_key(plan->'header'), created_at DESC)
    WHERE plan IS NOT NULL;
