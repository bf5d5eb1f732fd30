"""Device rules compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program (pure): cgroup v2's devices
controller. The kernel runs it on every open or mknod of a device node by a process of the
cgroup; it returns 1 to allow and 0 to deny (EPERM).

Its context is ``struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`` where
access_type is ``access << 16 | type`` (type 1 block, 2 char; access bits 1 mknod, 2 read,
4 write). The program loads the four fields into r2-r5, then tries the rules in order: each is a
block of jumps to the next block on a mismatch that ends in "return 1"; past the last, "return 0".
An access asking for several bits matches a rule only if the rule allows them all.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

from runtime.cgroups.devices import ALL, BLOCK, CHAR, DeviceRule

_TYPE = {BLOCK: 1, CHAR: 2}
_ACCESS_BITS = {"m": 1, "r": 2, "w": 4}

# eBPF opcodes (linux/bpf_common.h, linux/bpf.h).
LDX_W = 0x61        # BPF_LDX | BPF_MEM | BPF_W:    dst = *(u32 *)(src + off)
AND_K = 0x57        # BPF_ALU64 | BPF_AND | BPF_K:  dst &= imm
RSH_K = 0x77        # BPF_ALU64 | BPF_RSH | BPF_K:  dst >>= imm
MOV_K = 0xB7        # BPF_ALU64 | BPF_MOV | BPF_K:  dst = imm
MOV_X = 0xBF        # BPF_ALU64 | BPF_MOV | BPF_X:  dst = src
JNE_K = 0x55        # BPF_JMP | BPF_JNE | BPF_K:    if dst != imm: pc += off
JNE_X = 0x5D        # BPF_JMP | BPF_JNE | BPF_X:    if dst != src: pc += off
EXIT = 0x95

INSN_SIZE = 8
_R0, _R1, _TYPE_R, _ACCESS_R, _MAJOR_R, _MINOR_R = 0, 1, 2, 3, 4, 5


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn``: opcode, dst/src registers in one byte, s16 offset, s32 imm."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_PROLOGUE = (
    insn(LDX_W, _TYPE_R, _R1, 0), insn(AND_K, _TYPE_R, imm=0xFFFF),
    insn(LDX_W, _ACCESS_R, _R1, 0), insn(RSH_K, _ACCESS_R, imm=16),
    insn(LDX_W, _MAJOR_R, _R1, 4),
    insn(LDX_W, _MINOR_R, _R1, 8),
)
_ALLOW = (insn(MOV_K, _R0, imm=1), insn(EXIT))
_DENY = (insn(MOV_K, _R0, imm=0), insn(EXIT))


def _number(n: int) -> int:
    """A u32 device number as the s32 immediate the instruction holds (the JNE compares 64-bit
    registers with the sign-extended imm, and the context's u32 is zero-extended: numbers from
    2^31 up cannot be expressed, and no kernel hands such majors out)."""
    if n >= 1 << 31:
        raise ValueError(f"device number {n}: too large for a device filter")
    return n


def _rule_block(rule: DeviceRule) -> list[tuple[int, int, int, int] | bytes]:
    """A rule's instructions; jumps are (code, dst, src_or_None, imm) tuples, resolved later to
    the start of the next block."""
    block: list[tuple[int, int, int, int] | bytes] = []
    if rule.kind != ALL:
        block.append((JNE_K, _TYPE_R, 0, _TYPE[rule.kind]))
    bits = sum(_ACCESS_BITS[a] for a in rule.access)
    if bits != 7:
        # r1 (the context pointer, no longer needed) = requested & allowed; all requested bits?
        block += [insn(MOV_X, _R1, _ACCESS_R), insn(AND_K, _R1, imm=bits)]
        block.append((JNE_X, _R1, _ACCESS_R, 0))
    if rule.major is not None:
        block.append((JNE_K, _MAJOR_R, 0, _number(rule.major)))
    if rule.minor is not None:
        block.append((JNE_K, _MINOR_R, 0, _number(rule.minor)))
    return block + list(_ALLOW)


def program(rules: Sequence[DeviceRule]) -> bytes:
    """The whole program: allow what any rule allows, deny the rest."""
    out = list(_PROLOGUE)
    for rule in rules:
        block = _rule_block(rule)
        for i, item in enumerate(block):
            if isinstance(item, bytes):
                out.append(item)
                continue
            code, dst, src, imm = item
            out.append(insn(code, dst, src, off=len(block) - i - 1, imm=imm))
    out += _DENY
    return b"".join(out)
