"""Command-line option mutations of ``lq``, ``explore --fractions``, ``dvh``,
``assess --method`` and ``accumulate --reference``.

Each variant is a fixed argument list with its expectation: a non-finite, negative or zero
dose, fraction number or alpha/beta, an unknown name, a malformed list, or two options that
contradict each other must be refused; a valid but unusual value (``--fractions 2.5`` in
``lq``, an older reference course) may be accepted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from . import inputs
from .model import EITHER, REFUSE, Built


@dataclass(frozen=True)
class OptionMutation:
    """``args`` run in a copy of input set ``base`` (None: no files needed)."""

    mutation_class: str
    name: str
    base: str | None
    args: tuple[str, ...]
    expect: str = REFUSE


def _lq() -> list[OptionMutation]:
    good = {"--dose": "24", "--fractions": "4", "--alpha-beta": "15"}
    out = []
    for option in good:
        for value in ("nan", "inf", "-inf", "-1", "0", "1e308", "abc", ""):
            if option == "--dose" and value == "0":
                continue  # zero dose gives zero BED: valid arithmetic
            args = {**good, option: value}
            # 1e308 fractions or alpha/beta is absurd but the LQ arithmetic stays finite
            huge_ok = value == "1e308" and option != "--dose"
            out.append(
                OptionMutation(
                    "option-lq",
                    f"lq{option}={value or 'empty'}",
                    None,
                    ("lq", *[x for kv in args.items() for x in kv]),
                    EITHER if huge_ok else REFUSE,
                )
            )
    extra = [
        (
            "lq-fractions-2.5",
            ("lq", "--dose", "24", "--fractions", "2.5", "--alpha-beta", "3"),
            EITHER,
        ),
        (
            "lq-dose-and-eqd2",
            ("lq", "--dose", "24", "--eqd2", "30", "--fractions", "4", "--alpha-beta", "3"),
            REFUSE,
        ),
        (
            "lq-eqd2-negative",
            ("lq", "--eqd2", "-5", "--fractions", "4", "--alpha-beta", "3"),
            REFUSE,
        ),
        ("lq-eqd2-nan", ("lq", "--eqd2", "nan", "--fractions", "4", "--alpha-beta", "3"), REFUSE),
        ("lq-bed-inf", ("lq", "--bed", "inf", "--fractions", "4", "--alpha-beta", "3"), REFUSE),
        (
            "lq-lql-dt-zero",
            ("lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "3", "--lql-dt", "0"),
            REFUSE,
        ),
        (
            "lq-lql-dt-negative",
            ("lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "3", "--lql-dt", "-2"),
            REFUSE,
        ),
        (
            "lq-lql-dt-nan",
            ("lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "3", "--lql-dt", "nan"),
            REFUSE,
        ),
        (
            "lq-overall-time-negative",
            (
                "lq",
                "--dose",
                "24",
                "--fractions",
                "4",
                "--alpha-beta",
                "3",
                "--overall-time",
                "-10",
            ),
            REFUSE,
        ),
        (
            "lq-overall-time-nan",
            (
                "lq",
                "--dose",
                "24",
                "--fractions",
                "4",
                "--alpha-beta",
                "3",
                "--overall-time",
                "nan",
            ),
            REFUSE,
        ),
        (
            "lq-format-xml",
            ("lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "3", "--format", "xml"),
            REFUSE,
        ),
        (
            "lq-unknown-option",
            ("lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "3", "--frobnicate"),
            REFUSE,
        ),
        ("lq-missing-alpha-beta", ("lq", "--dose", "24", "--fractions", "4"), REFUSE),
        ("lq-valid", ("lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "15"), EITHER),
    ]
    out += [OptionMutation("option-lq", n, None, a, e) for n, a, e in extra]
    return out


def _explore() -> list[OptionMutation]:
    values = {
        "0": REFUSE,
        "-1": REFUSE,
        "5-1": REFUSE,
        "1-100000000": REFUSE,
        "1-1000000000000": REFUSE,
        "1.5": REFUSE,
        "a": REFUSE,
        ",": REFUSE,
        "1,,2": EITHER,
        "1-": REFUSE,
        "-": REFUSE,
        "3-3": EITHER,
        "1-10,1-10": EITHER,
        "nan": REFUSE,
        "1e3": REFUSE,
        "99999999999999999999": REFUSE,
    }
    out = [
        OptionMutation(
            "option-explore",
            f"explore--fractions={v}",
            "npc",
            ("explore", "case.yaml", "--fractions", v),
            e,
        )
        for v, e in values.items()
    ]
    out += [
        OptionMutation(
            "option-explore",
            "explore--exclude-unknown",
            "npc",
            ("explore", "case.yaml", "--exclude", "no-such-limit"),
        ),
        OptionMutation(
            "option-explore",
            "explore--format-xml",
            "npc",
            ("explore", "case.yaml", "--format", "xml"),
        ),
        OptionMutation(
            "option-explore",
            "explore--plot-bad-ext",
            "npc",
            ("explore", "case.yaml", "--plot", "region.xyz"),
        ),
        OptionMutation(
            "option-explore",
            "explore--plot-no-dir",
            "npc",
            ("explore", "case.yaml", "--plot", "no/such/dir/r.png"),
        ),
    ]
    return out


def _dvh() -> list[OptionMutation]:
    base = ("dvh", "--dose", "course2/RD.dcm", "--structures", "course2/RS.dcm")
    variants = {
        "roi-unknown": (("--roi", "NoSuchROI"), REFUSE),
        "metrics-empty": (("--metrics", ""), REFUSE),
        "metrics-D150%": (("--metrics", "D150%"), REFUSE),
        "metrics-D-5%": (("--metrics", "D-5%"), REFUSE),
        "metrics-Dnan%": (("--metrics", "Dnan%"), REFUSE),
        "metrics-Dinfcc": (("--metrics", "Dinfcc"), REFUSE),
        "metrics-V-10Gy": (("--metrics", "V-10Gy"), REFUSE),
        "metrics-garbage": (("--metrics", "Dmean,,;DROP"), REFUSE),
        "metrics-V1e400Gy": (("--metrics", "V1e400Gy"), REFUSE),
        "reference-dose-zero": (("--metrics", "V95%", "--reference-dose", "0"), REFUSE),
        "reference-dose-negative": (("--metrics", "V95%", "--reference-dose", "-60"), REFUSE),
        "reference-dose-nan": (("--metrics", "V95%", "--reference-dose", "nan"), REFUSE),
        "V%-without-reference": (("--metrics", "V95%"), REFUSE),
        "end-cap-nan": (("--end-cap", "nan"), REFUSE),
        "end-cap-negative": (("--end-cap", "-3"), REFUSE),
        "end-cap-inf": (("--end-cap", "inf"), REFUSE),
        "end-cap-huge": (("--end-cap", "1e30"), REFUSE),
        "end-cap-word": (("--end-cap", "full"), REFUSE),
        "relative-scale-negative": (("--relative-scale", "-1"), REFUSE),
        "relative-scale-nan": (("--relative-scale", "nan"), REFUSE),
        "format-xml": (("--format", "xml"), REFUSE),
        "plot-no-dir": (("--plot", "no/such/dir/dvh.png"), REFUSE),
        "plot-no-extension": (("--plot", "course2"), EITHER),  # matplotlib adds .png
        "dose-missing": (("--dose", "nope.dcm"), REFUSE),
        "end-cap-zero": (("--end-cap", "0"), EITHER),
    }
    out = []
    for name, (extra, expect) in variants.items():
        args = list(base)
        if extra[0] == "--dose":
            args[2] = extra[1]
            extra = ()
        out.append(OptionMutation("option-dvh", f"dvh-{name}", "phantom", (*args, *extra), expect))
    return out


def _assess() -> list[OptionMutation]:
    variants = {
        "bogus": (["bogus"], REFUSE),
        "unknown-course": (["C9=none"], REFUSE),
        "mixed": (["none", "IMRT=structure"], REFUSE),
        "empty-method": (["IMRT="], REFUSE),
        "empty-course": (["=none"], REFUSE),
        "twice-same-course": (["IMRT=none", "IMRT=structure"], REFUSE),
        "two-whole": (["none", "structure"], REFUSE),
        "case-mismatch": (["NONE"], REFUSE),
        "per-course-valid": (["IMRT=none", "HFRS=prescription"], EITHER),
        "empty": ([""], REFUSE),
    }
    out = [
        OptionMutation(
            "option-assess",
            f"assess--method={name}",
            "npc",
            ("assess", "case.yaml", *[x for m in methods for x in ("--method", m)]),
            expect,
        )
        for name, (methods, expect) in variants.items()
    ]
    out += [
        OptionMutation(
            "option-assess",
            "assess--lql-dt-negative",
            "npc",
            ("assess", "case.yaml", "--lql-dt", "-1"),
        ),
        OptionMutation(
            "option-assess", "assess--lql-dt-nan", "npc", ("assess", "case.yaml", "--lql-dt", "nan")
        ),
        OptionMutation(
            "option-assess",
            "assess--constraints-unknown",
            "npc",
            ("assess", "case.yaml", "--constraints", "no-such-set"),
        ),
        OptionMutation(
            "option-assess", "assess--format-xml", "npc", ("assess", "case.yaml", "--format", "xml")
        ),
        OptionMutation("option-assess", "assess-case-missing", "npc", ("assess", "nope.yaml")),
    ]
    return out


def _accumulate() -> list[OptionMutation]:
    variants = {
        "unknown": ("C9", REFUSE),
        "empty": ("", EITHER),  # an empty --reference may mean the default
        "lower-case": ("c2", REFUSE),
        "older-course": ("C1", EITHER),
        "whitespace": (" C2 ", EITHER),
    }
    out = [
        OptionMutation(
            "option-accumulate",
            f"accumulate--reference={name}",
            "phantom",
            ("accumulate", "case.yaml", "--reference", value),
            expect,
        )
        for name, (value, expect) in variants.items()
    ]
    out += [
        OptionMutation(
            "option-accumulate",
            "accumulate--out-is-file",
            "phantom",
            ("accumulate", "case.yaml", "--out", "case.yaml"),
        ),
        OptionMutation(
            "option-accumulate",
            "accumulate--format-xml",
            "phantom",
            ("accumulate", "case.yaml", "--format", "xml"),
        ),
    ]
    return out


OPTION_MUTATIONS: list[OptionMutation] = [*_lq(), *_explore(), *_dvh(), *_assess(), *_accumulate()]


def build(mutation: OptionMutation, rng: random.Random, work: Path) -> Built:
    """Copy the input set (if any) into ``work`` and return the mutated command line."""
    if mutation.base is not None:
        inputs.prepare(mutation.base, work)
    else:
        work.mkdir(parents=True, exist_ok=True)
    description = "reirrad " + " ".join(
        repr(a) if (not a or " " in a) else a for a in mutation.args
    )
    return Built(mutation.mutation_class, description, mutation.expect, mutation.args)
