"""Set anomaly detection: the shipped config against the DeepSets paper's non-equivariant baseline.

Both models get the same per-element ConvEncoder and the same data and budget (``anomaly.yaml``);
the baseline replaces the set network (each image's mean similarity to its set) by
``PooledBaseline`` (pooled set features, fully connected layers, a fixed 16-way softmax over
positions). Each is trained with ``fit`` in a fresh process, then its last checkpoint is evaluated
with ``test`` on the fixed test sets (images never seen in training or validation). The baseline
takes sets of at most 16, so it is tested at 16 and 8 only. With ``--mnist-root`` pointing at
torchvision MNIST files, the same two rows on MNIST.

    python benchmarks/anomaly.py [--write] [--mnist-root data] [--epochs N]

``--write`` replaces the section of benchmarks/RESULTS.md with the table.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from _runs import fit, machine, scalars

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Set anomaly detection on images (benchmarks/anomaly.py)"
BASELINE = [
    "--model.init_args.net=symlight.models.PooledBaseline",
    "--model.init_args.net.init_args.n=16",
    "--model.init_args.net.init_args.hidden=256",
    "--model.init_args.net.init_args.depth=3",
    "--model.init_args.net.init_args.pooling=mean",
    "--data.init_args.val_sizes=[8]",
]


def run(name: str, extra: list[str]) -> dict[str, float | str]:
    """Fit then test one model; return its test figures and the fit time."""
    args = ["--config", "anomaly.yaml", *extra]
    seconds, workdir = fit(args)
    runs = workdir / "lightning_logs" / "anomaly"
    ckpt = runs / "version_0" / "checkpoints" / "last.ckpt"
    fit(args + ["--ckpt_path", str(ckpt)], subcommand="test", workdir=workdir)
    logged = scalars(runs / "eval" / "version_0")
    trained = scalars(runs / "version_0")
    row: dict[str, float | str] = {"model": name, "fit_s": seconds}
    for tag in ("test/acc", "test/acc@n=8", "test/acc@n=64", "test/auroc"):
        row[tag] = logged[tag][-1] if tag in logged else float("nan")
    row["steps"] = int(trained["train/epoch"][-1] + 1) if "train/epoch" in trained else 0
    row["equivariance"] = max(trained.get("equivariance/max_abs_error", [float("nan")]))
    return row


def table(rows: list[dict], command: str) -> str:
    lines = [
        HEADING,
        "",
        f"`{command}` — {machine()}, {date.today()}. The 2 cores were shared with other jobs "
        "while this ran: times are inflated and only comparable within the table. Test sets: "
        "1000 fixed sets per size, from test images only; chance is 1/n for accuracy, 0.5 for "
        "AUROC (element level, softmax probabilities over all real elements).",
        "",
        "| data | model | test acc n=16 | test acc n=8 | test acc n=64 | test AUROC n=16 | "
        "fit time (s) | max equivariance error |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pct(v: float) -> str:
        return "—" if v != v else f"{100 * v:.1f}%"

    for r in rows:
        auroc = "—" if r["test/auroc"] != r["test/auroc"] else f"{r['test/auroc']:.4f}"
        lines.append(
            f"| {r['data']} | {r['model']} | {pct(r['test/acc'])} | {pct(r['test/acc@n=8'])} | "
            f"{pct(r['test/acc@n=64'])} | {auroc} | {r['fit_s']:.0f} | {r['equivariance']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    text = RESULTS.read_text()
    if HEADING in text:
        start = text.index(HEADING)
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("" if end < 0 else text[end:])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the table into RESULTS.md")
    parser.add_argument("--mnist-root", help="folder with torchvision's MNIST files")
    parser.add_argument("--epochs", type=int, help="override trainer.max_epochs")
    args = parser.parse_args()
    common = [f"--trainer.max_epochs={args.epochs}"] if args.epochs else []
    sources = [("digits", [])]
    if args.mnist_root and (Path(args.mnist_root) / "MNIST" / "raw").is_dir():
        sources.append(
            ("MNIST", ["--data.init_args.source=mnist", f"--data.init_args.root={args.mnist_root}"])
        )
    elif args.mnist_root:
        print(f"no MNIST files under {args.mnist_root}/MNIST/raw: MNIST rows skipped")
    rows = []
    for data, source in sources:
        for name, extra in (
            ("ConvEncoder + mean similarity (anomaly.yaml)", []),
            ("ConvEncoder + PooledBaseline", BASELINE),
        ):
            row = run(name, [*common, *source, *extra])
            row["data"] = data
            rows.append(row)
            print(row, flush=True)
    command = "python benchmarks/anomaly.py" + (" --write" if args.write else "")
    if args.mnist_root:
        command += f" --mnist-root {args.mnist_root}"
    if args.epochs:
        command += f" --epochs {args.epochs}"
    section = table(rows, command)
    print(section)
    if args.write:
        write(section)


if __name__ == "__main__":
    main()
