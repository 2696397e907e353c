"""apimachinery's name validation (pkg/util/validation): qualified names, DNS-1123 subdomains.

Label keys, topology keys and scheduling gate names are qualified names; the embedded API server
and the configuration loader both report a bad one with upstream's exact words, so they share
these functions.
"""

from __future__ import annotations

import random
import re

DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_MAX_LENGTH = 63
_DNS1123_SUBDOMAIN_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_DNS1123_SUBDOMAIN_FMT}')"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    f"used for validation is '{_DNS1123_LABEL_FMT}')"
)
QUALIFIED_NAME_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QUALIFIED_NAME_FMT}')"
)


def dns1123_subdomain_errors(value: str) -> list[str]:
    """upstream IsDNS1123Subdomain: [] when valid."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(DNS1123_SUBDOMAIN_MESSAGE)
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """upstream IsQualifiedName: an optional DNS-1123 subdomain prefix and '/', then a name of at
    most 63 characters; [] when valid."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + QUALIFIED_NAME_MESSAGE
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append(f"name part must be no more than {QUALIFIED_NAME_MAX_LENGTH} characters")
    if not _QUALIFIED_NAME.match(name):
        errs.append("name part " + QUALIFIED_NAME_MESSAGE)
    return errs


LABEL_VALUE_MAX_LENGTH = 63
_LABEL_VALUE = re.compile(f"^({_QUALIFIED_NAME_FMT})?$")
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '({_QUALIFIED_NAME_FMT})?')"
)


def label_value_errors(value: str) -> list[str]:
    """upstream IsValidLabelValue: [] when valid."""
    errs = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters")
    if not _LABEL_VALUE.match(value):
        errs.append(LABEL_VALUE_MESSAGE)
    return errs


def label_map_error(labels: dict[str, str]) -> tuple[str, str] | None:
    """upstream ValidateLabels: the first (key, problem) of a map of labels, or None."""
    for key, value in labels.items():
        for problem in qualified_name_errors(key):
            return key, problem
        for problem in label_value_errors(value):
            return key, f"Invalid value: {value!r}: {problem}"
    return None


# k8s.io/apiserver/pkg/storage/names SimpleNameGenerator: 5 random characters from this alphabet
# after the prefix, cut to 58 so the name stays within 63
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_PREFIX = 58


def generate_name(prefix: str) -> str:
    """A name for `metadata.generateName` as the API server makes it."""
    return prefix[:_MAX_GENERATED_PREFIX] + "".join(random.choices(_GENERATE_CHARS, k=5))
