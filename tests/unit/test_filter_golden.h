/* Pinned partitions of tests/unit/test_filter.c's keys: {xxHash64 of the
 * canonical key, HASH mod 16, HASH mod 7, MOD 16, MOD 7}. The hashes were
 * also checked with an independent XXH64 over the canonical encoding of
 * docs/relay.md, and the MOD values by hand. */
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
