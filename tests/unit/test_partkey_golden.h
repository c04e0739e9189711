/* Pinned partitions of tests/unit/test_partkey.c's keys: {xxHash64 of the
 * canonical key, HASH mod 16, HASH mod 7, MOD 16, MOD 7}. The hashes were
 * also checked with an independent XXH64 over the canonical encoding of
 * docs/relay.md, and the MOD values by hand. The rows from "int 7" on were
 * computed by the relay's own code before it moved to common/hd_partkey.c
 * (and checked the same way), so that the move is known to keep every
 * partition. */
{UINT64_C(17222882131209490470), 6, 0, 0, 0},      /* int 0 */
    {UINT64_C(8919196489950941330), 2, 3, 1, 1},   /* int 1 */
    {UINT64_C(896958318687799551), 15, 1, 15, 6},  /* int -1 */
    {UINT64_C(8630085918058934746), 10, 4, 3, 4},  /* int 1000003 */
    {UINT64_C(8871896483105097140), 4, 6, 0, 6},   /* int min */
    {UINT64_C(2890243716471848456), 8, 6, 15, 0},  /* int max */
    {UINT64_C(8246226261626403269), 5, 2, 0, 0},   /* uint 0 */
    {UINT64_C(14151099905666271819), 11, 5, 0, 1}, /* uint 2^63 */
    {UINT64_C(14128460059661520464), 0, 3, 15, 1}, /* uint max */
    {UINT64_C(9487503518344871922), 2, 0, 5, 6},   /* uint prime */
    {UINT64_C(7187074121237491264), 0, 0, 0, 0},   /* str empty */
    {UINT64_C(9471376475734395798), 6, 2, 0, 0},   /* str a */
    {UINT64_C(11943076351026079158), 6, 4, 0, 0},  /* str utf8 */
    {UINT64_C(1429757072573221168), 0, 0, 0, 0},   /* bin */
    {UINT64_C(2228822609212273947), 11, 5, 0, 0},  /* decimal */
    {UINT64_C(3826399384269775489), 1, 1, 10, 0},  /* int+str */
    {UINT64_C(3918986399474653756), 12, 4, 7, 0},  /* int 7 */
    {UINT64_C(12623827161326813256), 8, 6, 6, 0},  /* int -42 */
    {UINT64_C(151122504416946137), 9, 5, 0, 2},    /* int -9000000000 */
    {UINT64_C(10047229806986101926), 6, 0, 2, 1},  /* uint 1.23e19 */
    {UINT64_C(1227702719634698503), 7, 0, 5, 5},   /* int 5, int 6, int 7 */
    {UINT64_C(9382248889129032483), 3, 0, 11, 2},  /* int -5, str alpha */
    {UINT64_C(4769750749601669783), 7, 0, 0, 0},   /* str email, int 3 */
    {UINT64_C(8244356275567953685), 5, 4, 0, 0},   /* str hello, world */
    {UINT64_C(18340963077510454435), 3, 5, 0, 0},  /* str empty, uint 0 */
    {UINT64_C(7552372492058774169), 9, 6, 1, 1},   /* int 1, null */
    {UINT64_C(16607152813381075325), 13, 2, 0, 0}, /* dbl 3.5 */
    {UINT64_C(10436573497913164272), 0, 6, 0, 0},  /* flt -0.25 */
    {UINT64_C(5047835170740929503), 15, 6, 0, 0},  /* temporal */
    {UINT64_C(5348070118556233707), 11, 2, 0, 0},  /* json */
    {UINT64_C(12802865386482449158), 6, 6, 0, 0},  /* badtext ff fe */
    {UINT64_C(5335242891934879136), 0, 3, 0, 0},   /* bin 00 01 00 */
    {UINT64_C(2738632611990211808), 0, 4, 0, 0},   /* decimal 0.000, int -1 */
