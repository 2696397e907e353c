"""The safe loader every front reads YAML and JSON through: depth and go-yaml's aliasing rule
on the event stream, anchors a real file uses still allowed, one-line errors."""

from __future__ import annotations

import pytest

from berth.safeload import InputError, YamlLimits, load_all, load_one, nesting_depth_exceeds


def test_ordinary_anchors_are_allowed() -> None:
    doc = load_one("base: &b {cpu: 1}\na: *b\nb: *b\nc: [*b, *b]\n")
    assert doc["a"] == doc["c"][1] == {"cpu": 1}


def test_a_billion_laughs_is_refused_before_it_is_built() -> None:
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    with pytest.raises(InputError, match="excessive aliasing"):
        load_all("\n".join(lines))


def test_aliases_count_towards_depth() -> None:
    deep = "d: &d " + "[" * 60 + "]" * 60 + "\n"
    load_one(deep + "x: *d\n")  # 1 + 60 levels
    with pytest.raises(InputError, match="nests deeper than 100"):
        load_one(deep + "x: " + "[" * 45 + "*d" + "]" * 45 + "\n")  # 1 + 45 + 60


@pytest.mark.parametrize("depth", [101, 999])
def test_depth(depth: int) -> None:
    text = "[" * depth + "]" * depth
    with pytest.raises(InputError, match="nests deeper than 100 levels"):
        load_one(text)
    assert load_one(text, limits=YamlLimits(max_depth=depth)) is not None


def test_libyamls_own_bound_is_reported_as_such() -> None:
    with pytest.raises(InputError, match="nests deeper than 1000 levels"):
        load_one("[" * 5000 + "]" * 5000, limits=YamlLimits(max_depth=10_000))


def test_errors_are_one_line() -> None:
    with pytest.raises(InputError) as exc:
        load_one("a: [1, 2\n")
    assert "\n" not in str(exc.value) and "line 2" in str(exc.value)
    with pytest.raises(InputError, match="expected one document, found 2"):
        load_one("a: 1\n---\nb: 2\n")


def test_nesting_depth_of_decoded_json() -> None:
    value: object = 1
    for _ in range(30):
        value = {"a": [value]}
    assert nesting_depth_exceeds(value, 59) and not nesting_depth_exceeds(value, 60)
    assert not nesting_depth_exceeds(value, 10, encoded=b"{}")  # few brackets: no walk needed


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # sigs.k8s.io/yaml (go-yaml v2, then JSON), which kubectl and kube-apiserver read with
        ("a: 2026-01-01", {"a": "2026-01-01"}),  # a timestamp stays its text
        ("a: 2026-01-01T00:00:00Z", {"a": "2026-01-01T00:00:00Z"}),
        ('a: "2026-01-01"', {"a": "2026-01-01"}),
        ("a: [y, Y, n, N]", {"a": [True, True, False, False]}),  # go-yaml v2's YAML 1.1 words
        ("a: [yes, No, on, OFF, true, False]", {"a": [True, False, True, False, True, False]}),
        ('a: ["y", yy, yEs]', {"a": ["y", "yy", "yEs"]}),
        ("a: !!binary aGVsbG8=", {"a": "hello"}),
        ("1: a\ntrue: b\nn: c\n1.5: d", {"1": "a", "true": "b", "false": "c", "1.5": "d"}),
        ("a: {<<: {k: 1}, j: 2}", {"a": {"k": 1, "j": 2}}),  # merge keys still merge
        ("a: [1, 0x1f, 017, 1.5, ~, null]", {"a": [1, 31, 15, 1.5, None, None]}),
    ],
)
def test_scalars_and_keys_read_as_kubernetes_reads_them(text: str, want: object) -> None:
    assert load_one(text) == want


def test_a_null_key_is_refused_as_go_refuses_it() -> None:
    with pytest.raises(InputError, match="line 1: unsupported map key None"):
        load_one("~: 1")
