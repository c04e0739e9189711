SET time_zone='+00:00';
USE hbt;
INSERT INTO texts SELECT id + 100, c, vc, tx, l1, a1, u3, bn, vb, bl, NULL, cy, sj, uc, u16, gb, 'y' FROM texts WHERE id = 1;
INSERT INTO ints SELECT id + 100, t, tu, s, su, m, mu, i, iu, b, bu, y, bt1, bt9, bt64 FROM ints WHERE id = 1;
INSERT INTO others (id, e, s, big, e2) VALUES (100, 'c d', 'x,y', 'm1,m62', 'v256');
SET SESSION binlog_row_image=NOBLOB;
UPDATE texts SET c = 'nb' WHERE id = 101;
