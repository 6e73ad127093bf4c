"""Print `EXP_TABLE` of compiler/src/math.rs: for k = 0..127, the double nearest 2^(k/128)
(stored as its bits minus k << 45, so that adding the scaled exponent restores it) and the
relative correction tail = 2^(k/128) / hi - 1 rounded to double (stored first).

Needs mpmath (pip install mpmath); the table is committed, so building never runs this.
"""
import struct

import mpmath

mpmath.mp.prec = 200


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", float(v)))[0]


print("pub static EXP_TABLE: [u64; 256] = [")
for k in range(128):
    exact = mpmath.power(2, mpmath.mpf(k) / 128)
    hi = float(exact)
    tail = float(exact / mpmath.mpf(hi) - 1)
    print(f"    0x{bits(tail):016x}, 0x{bits(hi) - (k << 45):016x},")
print("];")
