"""The device program, run on a small interpreter of the eBPF instructions it uses, against the
decisions the rules mean; and the rules' v1 form."""
import os
import stat
import struct

import pytest

from runtime.cgroups import devicefilter as f
from runtime.cgroups.devices import DEFAULT_RULES, DeviceRule, container_rules, rule_of_node, v1_writes
from runtime.cgroups.resources import FileWrite
from runtime.errors import InvalidArgument

MKNOD, READ, WRITE = 1, 2, 4
BLOCK, CHAR = 1, 2


def run(program: bytes, kind: int, access: int, major: int, minor: int) -> int:
    """What the kernel's verifier-approved program returns for one device access."""
    ctx = struct.pack("<III", access << 16 | kind, major, minor)
    regs = [0] * 11
    pc = 0
    while True:
        code, regs_byte, off, imm = struct.unpack_from("<BBhi", program, pc * 8)
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == f.LDX_W:
            assert src == 1, "loads only from the context"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == f.AND_K:
            regs[dst] &= imm
        elif code == f.RSH_K:
            regs[dst] >>= imm
        elif code == f.MOV_K:
            regs[dst] = imm
        elif code == f.MOV_X:
            regs[dst] = regs[src]
        elif code == f.JNE_K:
            pc += off if regs[dst] != imm else 0
        elif code == f.JNE_X:
            pc += off if regs[dst] != regs[src] else 0
        elif code == f.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


@pytest.mark.parametrize(("kind", "access", "major", "minor", "allowed"), [
    (CHAR, READ | WRITE, 1, 3, 1),       # /dev/null
    (CHAR, READ, 1, 9, 1),               # /dev/urandom
    (CHAR, READ | WRITE, 136, 7, 1),     # a pty: any minor
    (CHAR, MKNOD, 1, 11, 1),             # making any node is allowed
    (BLOCK, MKNOD, 254, 0, 1),
    (CHAR, READ, 1, 11, 0),              # opening it is not (/dev/kmsg)
    (BLOCK, READ, 254, 0, 0),            # nor a disk
    (CHAR, READ | MKNOD, 1, 11, 0),      # every bit asked for must be allowed
    (BLOCK, READ | WRITE, 1, 3, 0),      # the block device 1:3 is not /dev/null
    (CHAR, READ, 10, 200, 1),            # /dev/net/tun
])
def test_the_default_program_decides_as_the_rules_say(kind, access, major, minor, allowed):
    assert run(f.program(DEFAULT_RULES), kind, access, major, minor) == allowed


def test_a_rule_with_fewer_permissions_allows_only_those():
    program = f.program((DeviceRule("b", 8, 0, "r"),))
    assert run(program, BLOCK, READ, 8, 0) == 1
    assert run(program, BLOCK, WRITE, 8, 0) == 0
    assert run(program, BLOCK, READ | WRITE, 8, 0) == 0
    assert run(program, BLOCK, READ, 8, 1) == 0


def test_an_all_rule_allows_everything_and_no_rule_nothing():
    assert run(f.program((DeviceRule("a", None, None),)), BLOCK, READ | WRITE | MKNOD, 8, 3) == 1
    assert run(f.program(()), CHAR, READ, 1, 3) == 0


def test_numbers_the_instruction_cannot_hold_are_refused():
    with pytest.raises(ValueError):
        f.program((DeviceRule("c", 1 << 31, 0),))


def test_rules_of_nodes_and_their_v1_lines(tmp_path):
    assert rule_of_node(stat.S_IFCHR | 0o600, os.makedev(10, 229), "wr") == DeviceRule("c", 10, 229, "rw")
    with pytest.raises(InvalidArgument):
        rule_of_node(stat.S_IFREG | 0o600, 0, "r")
    with pytest.raises(InvalidArgument, match="not a device node"):
        container_rules([(str(tmp_path), "rw")])
    with pytest.raises(InvalidArgument, match="No such file"):
        container_rules([(str(tmp_path / "none"), "rw")])
    assert container_rules([("/dev/null", "r")])[-1] == DeviceRule("c", 1, 3, "r")
    assert v1_writes((DeviceRule("c", None, None, "m"), DeviceRule("b", 8, 0, "rw"))) == [
        FileWrite("devices.deny", "a"), FileWrite("devices.allow", "c *:* m"),
        FileWrite("devices.allow", "b 8:0 rw")]
    with pytest.raises(InvalidArgument):
        DeviceRule("x", 1, 1)
    with pytest.raises(InvalidArgument):
        DeviceRule("c", 1, 1, "rx")
