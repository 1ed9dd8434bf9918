-- pg_temp.wait_until(q): whether query q (one boolean) says true within ten seconds,
-- asked every 10 ms (each time with a fresh snapshot).  Included by the scripts that
-- wait for the running scheduler or race it.
CREATE FUNCTION pg_temp.wait_until(q text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    FOR i IN 1 .. 1000 LOOP
        EXECUTE q INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END
$$;
