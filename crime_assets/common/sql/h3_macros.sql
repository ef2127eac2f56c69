-- H3 ids as UBIGINT bits ("8a2664c1a2dffff" <-> 622172175573319679): grouping and joining on integers
-- is several times faster than on the hex strings the tables store.
CREATE OR REPLACE TEMP MACRO h3_bits(cell) AS ('0x' || cell)::UBIGINT;
CREATE OR REPLACE TEMP MACRO h3_hex(bits) AS lower(hex(bits));
-- Months as SMALLINT (year * 12 + month - 1) while counting: grouping on them is cheaper than on 'YYYY-MM'.
CREATE OR REPLACE TEMP MACRO month_id(month) AS (substr(month, 1, 4)::INTEGER * 12 + substr(month, 6, 2)::INTEGER - 1)::SMALLINT;
CREATE OR REPLACE TEMP MACRO month_key(id) AS strftime(make_date(id // 12, id % 12 + 1, 1), '%Y-%m');
-- The parent at resolution res (< the cell's), as h3.cell_to_parent and h3cells.parent_cells compute it:
-- the resolution sits in bits 52-55 and the 3-bit digits below res are all ones (7).
CREATE OR REPLACE TEMP MACRO h3_parent_bits(bits, res) AS
    ((bits & ~(15::UBIGINT << 52)) | (res::UBIGINT << 52) | ((1::UBIGINT << (3 * (15 - res))) - 1::UBIGINT))::UBIGINT;
-- The Wilson score interval of a proportion k/n (n > 0) at normal quantile z:
--   centre = (p + z^2 / 2n) / (1 + z^2 / n),  half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)
-- with p = k/n. It always contains p and stays inside [0, 1]; the exact ends at k = 0 and k = n are
-- pinned so float rounding cannot put a bound a hair past the rate.
CREATE OR REPLACE TEMP MACRO wilson_lower(k, n, z) AS
    CASE WHEN n <= 0 THEN NULL
         WHEN k <= 0 THEN 0.0
         ELSE least(k / n, greatest(0.0,
             ((k / n) + z * z / (2 * n) - z * sqrt((k / n) * (1 - k / n) / n + z * z / (4 * n * n))) / (1 + z * z / n)))
    END;
CREATE OR REPLACE TEMP MACRO wilson_upper(k, n, z) AS
    CASE WHEN n <= 0 THEN NULL
         WHEN k >= n THEN 1.0
         ELSE greatest(k / n, least(1.0,
             ((k / n) + z * z / (2 * n) + z * sqrt((k / n) * (1 - k / n) / n + z * z / (4 * n * n))) / (1 + z * z / n)))
    END;
