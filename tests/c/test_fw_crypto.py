"""The firmware's SHA-512 and Ed25519 verifier (stm32/lib/sha512.c, ed25519.c over Monocypher)
against Python: hashlib on messages of many lengths, RFC 8032 TEST 1024, and random cases (2,000 in
the fast loop, 10,000 in a slow test) cross-checked with the `cryptography` package: valid
signatures, one bit flipped in the message, in the signature, in the key. All through one batch
process (tools/crypto_cli.c) under ASan + UBSan. The fixed vectors and the refusals of crafted
inputs are C cases in fw_ed25519.c; the decisions are in docs/security.md, "Signature
verification"."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parents[2]
FAST_CASES = 2_000    # in the fast loop: a couple of seconds
RANDOM_CASES = 10_000  # the full cross-check, marked slow
P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
L = 2**252 + 27742317777372353535851937790883648493

# RFC 8032 section 7.1, TEST 1024 (1023-byte message).
RFC8032_1024_SECRET = "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5"
RFC8032_1024_PUBLIC = "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e"
RFC8032_1024_MESSAGE = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
    "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
    "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
    "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
    "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
    "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
    "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
    "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
    "c60c905c15fc910840b94c00a0b9d0"
)
RFC8032_1024_SIGNATURE = ("0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
                          "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03")


def run_cli(cli: Path, mode: str, lines: list[str]) -> list[str]:
    proc = subprocess.run([str(cli), mode], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and not proc.stderr, \
        f"crypto_cli {mode} failed ({proc.returncode}):\n{proc.stderr}"
    out = proc.stdout.splitlines()
    assert len(out) == len(lines), f"crypto_cli {mode}: {len(out)} answers to {len(lines)} cases"
    return out


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def python_accepts(pub: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Case:
    what: str
    pub: bytes
    sig: bytes
    msg: bytes

    def line(self) -> str:
        return f"{self.pub.hex()} {self.sig.hex()} {self.msg.hex() or '-'}"


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def random_cases(count: int, seed: int) -> list[Case]:
    """count cases in groups of four per key: valid, then one bit flipped in the message, the
    signature (R or S), the key. Messages: mostly 32 bytes (what the firmware verifies: the image's
    SHA-256), the rest 0..300 bytes."""
    rng = random.Random(seed)
    cases: list[Case] = []
    while len(cases) < count:
        key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        pub = raw_public(key)
        msg = rng.randbytes(32 if rng.random() < 0.6 else rng.randrange(0, 301))
        sig = key.sign(msg)
        cases.append(Case("valid", pub, sig, msg))
        bad_msg = flip(msg, rng.randrange(8 * len(msg))) if msg else b"\x00"
        cases.append(Case("message", pub, sig, bad_msg))
        cases.append(Case("signature", pub, flip(sig, rng.randrange(512)), msg))
        cases.append(Case("key", flip(pub, rng.randrange(256)), sig, msg))
    return cases[:count]


def check_against_cryptography(cli: Path, count: int, seed: int) -> None:
    cases = random_cases(count, seed)
    got = run_cli(cli, "verify", [c.line() for c in cases])
    seen: dict[str, set[str]] = {}
    for case, verdict in zip(cases, got, strict=True):
        expected = python_accepts(case.pub, case.sig, case.msg)
        assert (verdict == "ok") == expected, \
            f"{case.what}: C says {verdict}, cryptography {expected}: {case.line()}"
        seen.setdefault(case.what, set()).add(verdict)
        if case.what == "signature" and int.from_bytes(case.sig[32:], "little") >= L:
            assert verdict == "noncanonical-s", case.line()
    # Every kind of case ran, and the flips were refused for each of the reasons they can cause.
    assert seen["valid"] == {"ok"}
    assert seen["message"] == {"bad-signature"}
    assert seen["signature"] == {"bad-signature", "noncanonical-s"}
    assert seen["key"] == {"bad-signature", "bad-key"}


def test_random_signatures_agree_with_cryptography(crypto_cli: Path) -> None:
    check_against_cryptography(crypto_cli, FAST_CASES, seed=25519)


@pytest.mark.slow
def test_ten_thousand_random_signatures_agree_with_cryptography(crypto_cli: Path) -> None:
    check_against_cryptography(crypto_cli, RANDOM_CASES, seed=8032)


def test_rfc8032_test_1024(crypto_cli: Path) -> None:
    msg = bytes.fromhex(RFC8032_1024_MESSAGE)
    assert len(msg) == 1023
    # The vector itself, checked with cryptography (it signs deterministically).
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_1024_SECRET))
    assert raw_public(key).hex() == RFC8032_1024_PUBLIC
    assert key.sign(msg).hex() == RFC8032_1024_SIGNATURE
    line = f"{RFC8032_1024_PUBLIC} {RFC8032_1024_SIGNATURE}"
    assert run_cli(crypto_cli, "verify", [f"{line} {msg.hex()}", f"{line} {msg[:-1].hex()}"]) == [
        "ok", "bad-signature"]


def _lengths() -> list[int]:
    # Around the SHA-512 block (128) and padding (111/112) boundaries, plus random sizes.
    rng = random.Random(512)
    return [0, 1, 3, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257, 1000, 4096,
            *(rng.randrange(1, 70000) for _ in range(20))]


def test_sha512_matches_hashlib(crypto_cli: Path) -> None:
    msgs = [random.Random(n).randbytes(n) for n in _lengths()]
    got = run_cli(crypto_cli, "sha512", [m.hex() or "-" for m in msgs])
    assert got == [hashlib.sha512(m).hexdigest() for m in msgs]


# --- small-order points: the list in ed25519.c and fw_ed25519.c, derived here ------------------

def _recover_x(y: int, sign: int) -> int:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert (x * x - x2) % P == 0, "no point with this y"
    return P - x if x & 1 != sign and x else x


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def _encode(pt: tuple[int, int]) -> bytes:
    return (pt[1] | (pt[0] & 1) << 255).to_bytes(32, "little")


def small_order_points() -> list[bytes]:
    """The 8 points of the torsion subgroup: the multiples of one point of order 8."""
    y = int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
                       "little")
    gen = (_recover_x(y, 0), y)
    points, pt = [], (0, 1)
    for _ in range(8):
        points.append(_encode(pt))
        pt = _add(pt, gen)
    assert pt == (0, 1) and len(set(points)) == 8
    return points


def test_small_order_list_is_the_torsion_subgroup() -> None:
    for source in (Path(__file__).parent / "fw_ed25519.c", ROOT / "stm32" / "lib" / "ed25519.c"):
        text = source.read_text(encoding="utf-8")
        table = text.split("small_order", 1)[1].split("};", 1)[0]
        listed = re.findall(r"[0-9a-f]{64}", table) or [
            bytes(int(b, 16) for b in row.split(",") if b.strip()).ljust(32, b"\0").hex()
            for row in re.findall(r"\{([^{}]*)\}", table.replace("\n", " "))]
        assert sorted(listed) == sorted(p.hex() for p in small_order_points()), source.name


def test_small_order_keys_refused(crypto_cli: Path) -> None:
    """A small-order key with R = the identity and S = 0: the cofactored equation holds for every
    message (a universal forgery; with the identity as the key even the equation without the
    cofactor holds). Refused as a key, whatever the signature."""
    forged = bytes([1]) + bytes(63)
    points = small_order_points()
    lines = [f"{p.hex()} {forged.hex()} {m}" for p in points for m in ("-", "616263")]
    got = run_cli(crypto_cli, "verify", lines)
    assert got == ["bad-key"] * 16


@pytest.mark.parametrize("multiple", [1, 2, 3, 5])
def test_s_plus_multiple_of_order_refused(crypto_cli: Path, multiple: int) -> None:
    """S + k*L (the same scalar mod L) is the classic malleation: refused as non-canonical, like
    cryptography does (RFC 8032 5.1.7: S must be in 0..L-1)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    msg = hashlib.sha256(b"image").digest()
    sig = key.sign(msg)
    s = int.from_bytes(sig[32:], "little") + multiple * L
    if s >= 2**256:
        pytest.fail("test setup: S + k*L must fit 256 bits")
    malleated = sig[:32] + s.to_bytes(32, "little")
    got = run_cli(crypto_cli, "verify", [Case("", raw_public(key), malleated, msg).line()])
    assert got == ["noncanonical-s"]
    assert not python_accepts(raw_public(key), malleated, msg)


# --- mixed-order R: the cofactored equation decides ----------------------------------------------

def _mul(n: int, pt: tuple[int, int]) -> tuple[int, int]:
    acc = (0, 1)
    while n:
        if n & 1:
            acc = _add(acc, pt)
        pt, n = _add(pt, pt), n >> 1
    return acc


def test_mixed_order_r_accepted_by_the_cofactored_equation(crypto_cli: Path) -> None:
    """A signer who holds the private key adds a point of order 2 to R and signs correctly for that
    R: [8]R loses the component, so the cofactored equation holds (RFC 8032 5.1.7 names it) and the
    signature is accepted; OpenSSL checks without the cofactor and refuses it. Not a forgery: it
    needs the private scalar a."""
    seed = bytes(range(1, 33))
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ~7 & (2**255 - 1) | 2**254
    by = 4 * pow(5, P - 2, P) % P
    base = (_recover_x(by, 0), by)
    pub = _encode(_mul(a, base))
    assert pub == raw_public(Ed25519PrivateKey.from_private_bytes(seed))
    msg = hashlib.sha256(b"image").digest()
    r = int.from_bytes(hashlib.sha512(b"nonce" + msg).digest(), "little") % L
    big_r = _encode(_add(_mul(r, base), (0, P - 1)))          # + (0, -1), of order 2
    k = int.from_bytes(hashlib.sha512(big_r + pub + msg).digest(), "little") % L
    sig = big_r + ((r + k * a) % L).to_bytes(32, "little")
    assert run_cli(crypto_cli, "verify", [Case("", pub, sig, msg).line()]) == ["ok"]
    assert not python_accepts(pub, sig, msg)
    # Without the order-2 point, the same construction is an ordinary signature both accept.
    plain_r = _encode(_mul(r, base))
    k = int.from_bytes(hashlib.sha512(plain_r + pub + msg).digest(), "little") % L
    plain = plain_r + ((r + k * a) % L).to_bytes(32, "little")
    assert run_cli(crypto_cli, "verify", [Case("", pub, plain, msg).line()]) == ["ok"]
    assert python_accepts(pub, plain, msg)
