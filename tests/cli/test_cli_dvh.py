"""``reirrad dvh`` on the Eclipse example: formats, errors, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reirrad.cli import main

ECLIPSE = Path(__file__).resolve().parents[3] / "shared" / "data" / "dicompyler-core-example"

pytestmark = pytest.mark.skipif(not ECLIPSE.exists(), reason="Eclipse example not available")


def args(*extra):
    return [
        "dvh",
        "--dose",
        str(ECLIPSE / "rtdose.dcm"),
        "--structures",
        str(ECLIPSE / "rtss.dcm"),
        *extra,
    ]


def test_json_has_one_object_per_roi_with_metrics_as_asked(capsys):
    code = main(
        args(
            "--roi",
            "Tumor Bed",
            "--roi",
            "Nodes",
            "--metrics",
            "Dmean,D95%,V14Gy,D0.035cc,V14Gy[cc]",
            "--format",
            "json",
        )
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["roi"] for d in data] == ["Tumor Bed", "Nodes"]
    for item in data:
        assert set(item) == {"roi", "volume_cc", "covered_fraction", "metrics"}
        assert list(item["metrics"]) == ["Dmean", "D95%", "V14Gy", "D0.035cc", "V14Gy[cc]"]
        assert 0 < item["covered_fraction"] <= 1
    tumor = data[0]["metrics"]
    # Eclipse: Tumor Bed mean 102.08 % of 14 Gy = 14.29 Gy
    assert tumor["Dmean"] == pytest.approx(14.29, abs=0.05)
    assert 0 <= tumor["V14Gy"] <= 100
    assert tumor["D0.035cc"] >= tumor["D95%"]


def test_csv_and_table(capsys):
    assert main(args("--roi", "Heart", "--metrics", "Dmean,Dmax", "--format", "csv")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "roi,volume_cc,covered_fraction,Dmean,Dmax"
    assert lines[1].startswith("Heart,")
    assert main(args("--roi", "Heart")) == 0
    assert "Heart" in capsys.readouterr().out


def test_unknown_roi_lists_available_names(capsys):
    assert main(args("--roi", "Spinal Cord")) == 2
    err = capsys.readouterr().err
    assert err.startswith("reirrad: error:")
    assert "Spinal Cord" in err and "Tumor Bed" in err and "Traceback" not in err


def test_bad_metric_is_exit_2(capsys):
    assert main(args("--roi", "Heart", "--metrics", "Dmean,D95")) == 2
    err = capsys.readouterr().err
    assert "--metrics" in err and "D95" in err


def test_v_percent_needs_a_reference_dose(capsys):
    assert main(args("--roi", "Heart", "--metrics", "V95%")) == 2
    assert "reference" in capsys.readouterr().err
    assert (
        main(
            args(
                "--roi", "Heart", "--metrics", "V95%", "--reference-dose", "14", "--format", "json"
            )
        )
        == 0
    )
    assert "V95%" in json.loads(capsys.readouterr().out)[0]["metrics"]


def test_plot_writes_png(tmp_path, capsys):
    target = tmp_path / "dvh.png"
    assert main(args("--roi", "Heart", "--roi", "Tumor Bed", "--plot", str(target))) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_relative_dose_needs_a_scale_and_v_percent_a_reference(capsys):
    from pathlib import Path

    from reirrad.cli import main

    data = Path(__file__).resolve().parents[3] / "shared" / "data"
    relative = str(data / "pydicom-rt-testfiles" / "rtdose.dcm")
    eclipse = data / "dicompyler-core-example"
    assert main(["dvh", "--dose", relative, "--structures", str(eclipse / "rtss.dcm")]) == 2
    assert "--relative-scale" in capsys.readouterr().err
    args = ["dvh", "--dose", str(eclipse / "rtdose.dcm"), "--structures", str(eclipse / "rtss.dcm")]
    assert main([*args, "--roi", "Heart", "--metrics", "V95%"]) == 2
    assert "--reference-dose" in capsys.readouterr().err
