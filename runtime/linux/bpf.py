"""bpf(2) for cgroup device programs: load one, attach it to a cgroup, list and detach the ones
there. The seam is ``CgroupDeviceBpf``; its fake is runtime.linux.testing.FakeCgroupDeviceBpf.

Only what cgroup v2 device control needs (runtime/cgroups/devicefilter.py builds the program):
BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program, BPF_PROG_ATTACH/DETACH with attach type
BPF_CGROUP_DEVICE, BPF_PROG_QUERY and BPF_PROG_GET_FD_BY_ID. The attach holds the program: the
descriptors are closed afterwards, and the program goes with its cgroup.
"""
from __future__ import annotations

import ctypes
import os
from typing import Protocol

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
# Several programs may sit on one cgroup and each of its ancestors; a device must pass them all.
BPF_F_ALLOW_MULTI = 2
_LOG_SIZE = 1 << 16
_MAX_QUERY = 64


class CgroupDeviceBpf(Protocol):
    def attach_device_program(self, cgroup_dir: str, insns: bytes) -> None:
        """Load the program and attach it to the cgroup, then detach whatever device programs
        were on that cgroup before (so re-applying replaces, never stacks)."""

    def device_programs(self, cgroup_dir: str) -> list[int]:
        """Ids of the device programs attached to the cgroup itself."""


class _LoadAttr(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32)]


class _AttachAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32)]


class _QueryAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("query_flags", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32)]


class _IdAttr(ctypes.Structure):
    _fields_ = [("prog_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class LinuxCgroupDeviceBpf:
    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long

    def _bpf(self, cmd: int, attr: ctypes.Structure, what: str) -> int:
        ret = int(self._libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(cmd), ctypes.byref(attr),
                                     ctypes.c_uint(ctypes.sizeof(attr))))
        if ret < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"bpf {what}: {os.strerror(e)}")
        return ret

    def _load(self, insns: bytes) -> int:
        code = ctypes.create_string_buffer(insns, len(insns))
        license = ctypes.create_string_buffer(b"Apache-2.0")
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr = _LoadAttr(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(insns) // 8,
                         insns=ctypes.addressof(code), license=ctypes.addressof(license),
                         log_level=1, log_size=_LOG_SIZE, log_buf=ctypes.addressof(log),
                         prog_name=b"pycrid_devices", expected_attach_type=BPF_CGROUP_DEVICE)
        try:
            return self._bpf(BPF_PROG_LOAD, attr, "load of the device program")
        except OSError as e:
            verifier = log.value.decode(errors="replace").strip().splitlines()[-3:]
            raise OSError(e.errno, f"{e.strerror} (verifier: {' | '.join(verifier)})") from None

    def _query(self, cgroup_fd: int) -> list[int]:
        ids = (ctypes.c_uint32 * _MAX_QUERY)()
        attr = _QueryAttr(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE,
                          prog_ids=ctypes.addressof(ids), prog_cnt=_MAX_QUERY)
        self._bpf(BPF_PROG_QUERY, attr, "query of the device programs")
        return list(ids[: attr.prog_cnt])

    def device_programs(self, cgroup_dir: str) -> list[int]:
        fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return self._query(fd)
        finally:
            os.close(fd)

    def attach_device_program(self, cgroup_dir: str, insns: bytes) -> None:
        cgroup = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            before = self._query(cgroup)
            program = self._load(insns)
            try:
                self._bpf(BPF_PROG_ATTACH, _AttachAttr(target_fd=cgroup, attach_bpf_fd=program,
                                                       attach_type=BPF_CGROUP_DEVICE,
                                                       attach_flags=BPF_F_ALLOW_MULTI),
                          f"attach of the device program to {cgroup_dir}")
            finally:
                os.close(program)
            for prog_id in before:
                self._detach(cgroup, prog_id, cgroup_dir)
        finally:
            os.close(cgroup)

    def _detach(self, cgroup: int, prog_id: int, cgroup_dir: str) -> None:
        try:
            old = self._bpf(BPF_PROG_GET_FD_BY_ID, _IdAttr(prog_id=prog_id), f"program {prog_id}")
        except FileNotFoundError:
            return  # detached and freed meanwhile
        try:
            self._bpf(BPF_PROG_DETACH, _AttachAttr(target_fd=cgroup, attach_bpf_fd=old,
                                                   attach_type=BPF_CGROUP_DEVICE),
                      f"detach of program {prog_id} from {cgroup_dir}")
        finally:
            os.close(old)
