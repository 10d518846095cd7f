"""drift-export: a lerobot-train checkpoint → a parity-gated ONNX bundle; --verify re-checks one."""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.drift.timing import time_calls

from .bundle import DEFAULT_OPSET, export_bundle
from .checkpoint import ExportError
from .manifest import BundleError, BundleManifest
from .onnxrt import ORT_PROVIDERS, ProviderError, create_session, run
from .tensorrt import TensorRTError, import_tensorrt
from .verify import ENGINE, verify_bundle


def _latency_ms(call, manifest: BundleManifest, repeats: int = 30) -> tuple[float, float]:
    """p50/p99 of one graph call on this machine, random feeds."""
    rng = np.random.default_rng(0)
    feed = {
        s.name: (
            rng.integers(0, 256, s.shape, dtype=np.uint8)
            if s.dtype == "uint8"
            else rng.standard_normal(s.shape).astype(np.float32)
        )
        for s in manifest.inputs
    }
    times_ms = np.array(time_calls(lambda: call(feed), repeats, warmup=1)) * 1000
    return float(np.percentile(times_ms, 50)), float(np.percentile(times_ms, 99))


def _ort_call(model: Path):
    session = create_session(model)
    return lambda feed: run(session, feed)


def _summary(bundle: Path, manifest: BundleManifest, title: str, engines: dict[str, Path]) -> None:
    console = Console()
    io = Table(title=title)
    for col in ("", "name", "dtype", "shape"):
        io.add_column(col)
    for kind, specs in (("in", manifest.inputs), ("out", manifest.outputs)):
        for s in specs:
            io.add_row(kind, s.name, s.dtype, str(s.shape))
    console.print(io)
    facts = Table(show_header=False)
    for p in manifest.parity:
        facts.add_row(
            f"parity ({p.backend})",
            f"max |Δ| {p.max_abs_normalized:.2e} normalized, {p.max_abs_robot_units:.2e} robot units; "
            f"min cosine {p.min_cosine:.7f}; {p.n_random} random + {p.n_realistic} from {p.realistic_source}; "
            f"repeatable {p.bitwise_repeatable}",
        )
    for name in manifest.files:
        facts.add_row(name, f"{(bundle / name).stat().st_size / 1e6:.2f} MB")
    for p in manifest.parity:
        p50, p99 = _latency_ms(_ort_call(bundle / p.model), manifest)
        facts.add_row(
            f"latency {p.model}", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (ORT CPU, batch {manifest.batch_size})"
        )
    for precision, engine in engines.items():
        from .tensorrt import EngineRunner

        runner = EngineRunner(engine)
        p50, p99 = _latency_ms(runner.run, manifest, repeats=200)
        graph = "CUDA graph" if runner.cuda_graph else "no CUDA graph"
        facts.add_row(f"TensorRT {precision}", f"{engine}\np50 {p50:.2f} ms, p99 {p99:.2f} ms ({graph})")
    console.print(facts)


def _build_engines(bundle: Path) -> dict[str, Path] | None:
    """Build (or find cached) the TensorRT engines of the bundle's FP32/FP16 graphs on this GPU and
    gate them on the golden set; None (with the figures printed) if one fails its gate."""
    from .tensorrt import engine_path

    t0 = time.perf_counter()
    results = verify_bundle(bundle, ENGINE)
    print(
        f"TensorRT engines ready in {time.perf_counter() - t0:.1f} s (built once per GPU and TensorRT version)"
    )
    _print_results(bundle, results)
    passed = {name.rsplit("-", 1)[-1]: ok for name, _, ok in results}
    for precision in [p for p, ok in passed.items() if not ok]:
        engine_path(bundle, precision).unlink()  # never left in the cache for drift-run to find
    if not all(passed.values()):
        return None
    return {precision: engine_path(bundle, precision) for precision in passed}


def _print_results(bundle: Path, results) -> None:
    for backend, figures, passed in results:
        print(
            f"{'PASS' if passed else 'FAIL'}: {bundle} on {backend}: max |Δ| {figures.max_abs:.2e} "
            f"normalized ({figures.max_robot_abs:.2e} robot units), min cosine {figures.min_cosine:.7f}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="drift-export", description=__doc__)
    parser.add_argument("--ckpt", type=Path, help="a pretrained_model/ folder written by lerobot-train")
    parser.add_argument("--out", type=Path, help="bundle folder to write (default: <ckpt>/../bundle)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset, 17–20 (default 17)")
    parser.add_argument("--batch", type=int, default=1, help="static batch size (1 for the robot)")
    parser.add_argument(
        "--dataset-root", type=Path, help="local training dataset, if not where train_config.json says"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing bundle")
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="also write an FP16 graph (GPU providers, TensorRT), gated at 1e-2",
    )
    parser.add_argument("--int8", action="store_true", help="also write an INT8 (CPU) graph, gated at 5e-2")
    parser.add_argument(
        "--tensorrt",
        action="store_true",
        help="also build this GPU's TensorRT engines (FP32, and FP16 with --fp16), cached and gated",
    )
    parser.add_argument("--verify", type=Path, metavar="BUNDLE", help="re-check a bundle on this machine")
    parser.add_argument(
        "--backend",
        choices=[*sorted(ORT_PROVIDERS), ENGINE],
        default="cpu",
        help=f"for --verify: an ONNX Runtime execution provider, or {ENGINE} (native TensorRT); default cpu",
    )
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    try:
        if args.verify:
            results = verify_bundle(args.verify, args.backend)
            _print_results(args.verify, results)
            return 0 if all(passed for _, _, passed in results) else 1
        if args.ckpt is None:
            parser.error("--ckpt is required (or --verify BUNDLE)")
        if not 17 <= args.opset <= 20:
            raise ExportError(f"--opset must be in 17–20 (TensorRT 10 parses up to 20); got {args.opset}.")
        if args.batch < 1:
            raise ExportError(f"--batch must be ≥ 1; got {args.batch}.")
        if args.tensorrt:
            import_tensorrt()  # no GPU or no TensorRT: say so before exporting anything
        out = args.out or args.ckpt.parent / "bundle"
        manifest = export_bundle(
            args.ckpt,
            out,
            args.opset,
            args.batch,
            args.dataset_root,
            force=args.force,
            int8=args.int8,
            fp16=args.fp16,
        )
        engines = _build_engines(out) if args.tensorrt else {}
        _summary(out, manifest, f"bundle written: {out}", engines or {})
        if engines is None:
            print(
                "drift-export: error: a TensorRT engine failed the accelerator gate (figures above); the "
                "bundle is fine, use --backend ort on this machine.",
                file=sys.stderr,
            )
            return 1
        return 0
    except (ExportError, BundleError, ProviderError, TensorRTError) as err:
        print(f"drift-export: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a disk that filled up or a folder that went read-only mid-export
        print(
            f"drift-export: error: cannot write {err.filename or ''} ({err.strerror}); nothing was written.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
