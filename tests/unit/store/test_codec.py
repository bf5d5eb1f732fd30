from __future__ import annotations

import dataclasses
import json

import pytest

from runtime.cgroups.resources import Resources
from runtime.container.model import ContainerConfig, Mount, NamespaceMode, Seccomp, SecurityContext
from runtime.network.plugin import DNS, PortMapping
from runtime.sandbox.model import SandboxConfig
from runtime.store.codec import decode, encode


def roundtrip(value):
    return decode(type(value), json.loads(json.dumps(encode(value))))


def test_container_config_roundtrips() -> None:
    config = ContainerConfig(
        name="c", attempt=2, image="busybox", command=("sh",), envs=(("A", "1=2"),),
        mounts=(Mount("/data", "/host/data", readonly=True, propagation="rslave"),),
        labels={"k": "v"}, resources=Resources(cpu_shares=512, hugepage_limits={"2MB": 0}),
        security=SecurityContext(pid_mode=NamespaceMode.POD, run_as_user=1000,
                                 masked_paths=(), seccomp=Seccomp("Localhost", "/p.json")))
    assert roundtrip(config) == config


def test_sandbox_config_roundtrips() -> None:
    config = SandboxConfig(name="p", uid="u", namespace="n", dns=DNS(servers=("1.1.1.1",)),
                           port_mappings=(PortMapping("TCP", 80, 8080),), sysctls={"net.x": "1"},
                           network_mode=NamespaceMode.NODE)
    assert roundtrip(config) == config


def test_unknown_fields_are_refused() -> None:
    data = encode(DNS())
    data["future"] = 1
    with pytest.raises(ValueError, match="future"):
        decode(DNS, data)


@pytest.mark.parametrize("field, value", [
    ("container_port", "80"),  # a string where a number belongs
    ("container_port", True),  # JSON true is not a number to a record
    ("protocol", 6),
    ("host_ip", None),  # not optional
])
def test_data_of_the_wrong_json_type_is_refused(field: str, value: object) -> None:
    data = encode(PortMapping("TCP", 80, 8080))
    data[field] = value
    with pytest.raises(ValueError, match="expected"):
        decode(PortMapping, data)


@pytest.mark.parametrize("field, value", [("dns", "1.1.1.1"), ("port_mappings", {"protocol": "TCP"}),
                                          ("labels", ["k", "v"])])
def test_a_container_of_the_wrong_json_type_is_refused(field: str, value: object) -> None:
    data = encode(SandboxConfig(name="p", uid="u", namespace="n"))
    data[field] = value
    with pytest.raises(ValueError, match="expected"):
        decode(SandboxConfig, data)


def test_a_float_field_takes_a_whole_number() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Rate:
        per_second: float

    assert decode(Rate, {"per_second": 2}) == Rate(2)


def test_a_class_field_types_are_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving the annotation strings costs ~1 ms a record: once per class, not per decode."""
    import typing

    from runtime.store import codec

    @dataclasses.dataclass(frozen=True)
    class Fresh:
        pid: int
        names: tuple[str, ...] = ()

    resolved: list[type] = []
    real = typing.get_type_hints
    monkeypatch.setattr(typing, "get_type_hints", lambda cls: resolved.append(cls) or real(cls))
    assert [decode(Fresh, {"pid": n, "names": ["a"]}) for n in (1, 2)] == [Fresh(1, ("a",)), Fresh(2, ("a",))]
    assert resolved == [Fresh]
    assert codec.field_types(Fresh) == {"pid": int, "names": tuple[str, ...]}
