SET time_zone='+00:00';
SET sql_mode='';
DROP DATABASE IF EXISTS hbt;
CREATE DATABASE hbt CHARACTER SET utf8mb4;
USE hbt;
CREATE TABLE ints (
  id INT PRIMARY KEY,
  t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, su SMALLINT UNSIGNED,
  m MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  b BIGINT, bu BIGINT UNSIGNED, y YEAR, bt1 BIT(1), bt9 BIT(9), bt64 BIT(64)
) ENGINE=InnoDB;
INSERT INTO ints VALUES
 (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615, 1901, b'1', b'100000001', b'1111111111111111111111111111111111111111111111111111111111111111'),
 (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 2155, b'0', b'0', b'0'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL);
CREATE TABLE nums (
  id INT PRIMARY KEY,
  d1 DECIMAL(65,30), d2 DECIMAL(10,4), d3 DECIMAL(5,0), d4 DECIMAL(20,10) UNSIGNED, d5 DECIMAL(4,4),
  f FLOAT, fu FLOAT UNSIGNED, dd DOUBLE
);
INSERT INTO nums VALUES
 (1, 12345678901234567890123456789012345.123456789012345678901234567890, -12.3400, 99999, 1234567890.0123456789, -0.9999, 1.1, 3.4e38, 0.1),
 (2, -0.000000000000000000000000000001, 0, -99999, 0, 0.0001, -1.5e-10, 0, 1e300),
 (3, 0, 1, 0, 0.0000000001, 0, 123456.7, 0.5, -2.2250738585072014e-308),
 (4, -99999999999999999999999999999999999.999999999999999999999999999999, -999999.9999, 1, NULL, NULL, 100, NULL, 123456789012345680000);
CREATE TABLE temporal (
  id INT PRIMARY KEY,
  d DATE, t0 TIME, t1 TIME(1), t2 TIME(2), t3 TIME(3), t4 TIME(4), t5 TIME(5), t6 TIME(6),
  dt0 DATETIME, dt1 DATETIME(1), dt3 DATETIME(3), dt6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts2 TIMESTAMP(2) NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL
);
INSERT INTO temporal VALUES
 (1, '2024-02-29', '838:59:59', '-838:59:58.9', '12:34:56.78', '-00:00:00.001', '01:02:03.0004', '-01:02:03.00005', '-838:59:59.000000',
  '2024-02-29 23:59:59', '1000-01-01 00:00:00.1', '9999-12-31 23:59:59.999', '2001-02-03 04:05:06.070809',
  '1970-01-01 00:00:01', '2038-01-19 03:14:07.99', '2024-06-01 12:00:00.000001'),
 (2, '0000-00-00', '00:00:00', '-00:00:00.1', '-00:00:01.01', '-00:00:00.999', '-12:00:00.0001', '00:00:00.00001', '-00:00:00.000001',
  '0000-00-00 00:00:00', '0000-00-00 00:00:00.0', '2020-00-00 00:00:00.000', '0000-00-00 00:00:00.000000',
  '0000-00-00 00:00:00', '0000-00-00 00:00:00.00', '0000-00-00 00:00:00.000000'),
 (3, '1000-01-01', '-00:00:01', '23:59:59.9', '-838:59:59.99', '838:59:58.999', '-00:59:59.9999', '10:10:10.99999', '838:59:59.000000',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE texts (
  id INT PRIMARY KEY,
  c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(300) CHARACTER SET utf8mb4, tx TEXT CHARACTER SET utf8mb4,
  l1 VARCHAR(20) CHARACTER SET latin1, a1 VARCHAR(20) CHARACTER SET ascii, u3 VARCHAR(20) CHARACTER SET utf8mb3,
  bn BINARY(4), vb VARBINARY(20), bl BLOB, lb LONGBLOB,
  cy VARCHAR(20) CHARACTER SET cp1251, sj VARCHAR(20) CHARACTER SET sjis, uc VARCHAR(20) CHARACTER SET ucs2,
  u16 VARCHAR(10) CHARACTER SET utf16, gb TEXT CHARACTER SET gbk, lc CHAR(255) CHARACTER SET utf8mb4
);
INSERT INTO texts VALUES
 (1, 'héllo', CONCAT('a"b\\c', CHAR(10), CHAR(9), CHAR(1), '😀 €'), 'tëxt', CONCAT('caf', CHAR(233 USING latin1), ' ', CHAR(128 USING latin1), CHAR(129 USING latin1)), 'plain',
  'naïve', X'00FF7F80', X'DEADBEEF00', X'', REPEAT(X'01', 300),
  'Привет', 'ｱｲｳ日本', 'Ωmega', '𝄞x', '中文', REPEAT('ü', 200)),
 (2, '', '', '', '', '', '', NULL, NULL, NULL, NULL, '', '', '', '', '', 'x');
CREATE TABLE others (
  id INT PRIMARY KEY,
  e ENUM('a','b','c d','€'), s SET('x','y','z'), j JSON, g GEOMETRY, p POINT,
  big SET('m0','m1','m2','m3','m4','m5','m6','m7','m8','m9','m10','m11','m12','m13','m14','m15','m16','m17','m18','m19','m20','m21','m22','m23','m24','m25','m26','m27','m28','m29','m30','m31','m32','m33','m34','m35','m36','m37','m38','m39','m40','m41','m42','m43','m44','m45','m46','m47','m48','m49','m50','m51','m52','m53','m54','m55','m56','m57','m58','m59','m60','m61','m62','m63'),
  e2 ENUM('v0','v1','v2','v3','v4','v5','v6','v7','v8','v9','v10','v11','v12','v13','v14','v15','v16','v17','v18','v19','v20','v21','v22','v23','v24','v25','v26','v27','v28','v29','v30','v31','v32','v33','v34','v35','v36','v37','v38','v39','v40','v41','v42','v43','v44','v45','v46','v47','v48','v49','v50','v51','v52','v53','v54','v55','v56','v57','v58','v59','v60','v61','v62','v63','v64','v65','v66','v67','v68','v69','v70','v71','v72','v73','v74','v75','v76','v77','v78','v79','v80','v81','v82','v83','v84','v85','v86','v87','v88','v89','v90','v91','v92','v93','v94','v95','v96','v97','v98','v99','v100','v101','v102','v103','v104','v105','v106','v107','v108','v109','v110','v111','v112','v113','v114','v115','v116','v117','v118','v119','v120','v121','v122','v123','v124','v125','v126','v127','v128','v129','v130','v131','v132','v133','v134','v135','v136','v137','v138','v139','v140','v141','v142','v143','v144','v145','v146','v147','v148','v149','v150','v151','v152','v153','v154','v155','v156','v157','v158','v159','v160','v161','v162','v163','v164','v165','v166','v167','v168','v169','v170','v171','v172','v173','v174','v175','v176','v177','v178','v179','v180','v181','v182','v183','v184','v185','v186','v187','v188','v189','v190','v191','v192','v193','v194','v195','v196','v197','v198','v199','v200','v201','v202','v203','v204','v205','v206','v207','v208','v209','v210','v211','v212','v213','v214','v215','v216','v217','v218','v219','v220','v221','v222','v223','v224','v225','v226','v227','v228','v229','v230','v231','v232','v233','v234','v235','v236','v237','v238','v239','v240','v241','v242','v243','v244','v245','v246','v247','v248','v249','v250','v251','v252','v253','v254','v255','v256','v257'),
  ip INET6, uu UUID
);
INSERT INTO others VALUES
 (1, 'c d', 'x,z', '{"k": [1, 2.5, "s", null, true], "o": {}}', ST_GeomFromText('POINT(1 2)'), POINT(3, 4),
  'm0,m63', 'v257', '::1', '123e4567-e89b-12d3-a456-426614174000'),
 (2, '€', '', '[]', NULL, NULL, '', 'v0', NULL, NULL),
 (3, NULL, 'x,y,z', NULL, NULL, NULL, NULL, NULL, '2001:db8::ff00:42:8329', NULL);
-- updates and deletes, several rows in one transaction
BEGIN;
UPDATE ints SET t = t + 1, iu = 7 WHERE id = 2;
UPDATE texts SET vc = 'changed' WHERE id = 2;
DELETE FROM nums WHERE id = 4;
COMMIT;
-- no primary key
CREATE TABLE nopk (a INT, b VARCHAR(5));
INSERT INTO nopk VALUES (1, 'x'), (2, NULL);
-- composite key in non-column order
CREATE TABLE ck (a INT, b VARCHAR(10), c INT, PRIMARY KEY (c, b));
INSERT INTO ck VALUES (1, 'k', 9);
UPDATE ck SET a = 2 WHERE c = 9;
-- minimal row image: partial images
SET SESSION binlog_row_image=MINIMAL;
UPDATE ck SET a = 3 WHERE c = 9;
DELETE FROM ck WHERE c = 9;
SET SESSION binlog_row_image=FULL;
-- a rolled back transaction: nothing in the binlog for InnoDB
BEGIN; INSERT INTO nopk VALUES (99, 'no'); ROLLBACK;
-- MyISAM: BEGIN ... COMMIT without XID
CREATE TABLE mi (id INT PRIMARY KEY, v INT) ENGINE=MyISAM;
INSERT INTO mi VALUES (1, 1), (2, 2);
-- statement-format DML shows as a statement
SET SESSION binlog_format=STATEMENT;
INSERT INTO nopk VALUES (5, 'stmt');
SET SESSION binlog_format=ROW;
DROP TABLE mi;
