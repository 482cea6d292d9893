"""An exported GGUF checked by llama.cpp itself (scripts/install_llama_runtime.py installs
it): the same token ids go through the MLX model folder and through llama.cpp loading the
GGUF; their next-token logits are compared, and greedy text from both is set side by side.
Both get token ids, not text, so the comparison is of the weights and the architecture;
whether llama.cpp's tokenizer gives the same ids as the folder's is reported apart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from olelo.cli import UserError

RUNTIME_ENV = "OLELO_LLAMA_RUNTIME"  # where install_llama_runtime.py installed it
DEFAULT_RUNTIME = ".llama-runtime"


def runtime_dir() -> Path:
    return Path(os.environ.get(RUNTIME_ENV) or DEFAULT_RUNTIME)


def load_runtime():
    """The llama_cpp_py_sync module from the runtime folder, or a one-line refusal."""
    folder = runtime_dir()
    if not (folder / "olelo_runtime.json").is_file():
        raise UserError(f"no llama.cpp runtime in {folder}: run `make llama-runtime` (or set {RUNTIME_ENV}), "
                        f"or skip the check with GGUF_CHECK=0")
    if str(folder.resolve()) not in sys.path:
        sys.path.insert(0, str(folder.resolve()))
    import llama_cpp_py_sync
    from llama_cpp_py_sync._cffi_bindings import get_ffi, get_lib

    global _LOG_CALLBACK
    if _LOG_CALLBACK is None:  # llama.cpp's own log is pages of info; keep its errors only
        ffi = get_ffi()

        @ffi.callback("ggml_log_callback")
        def _log(level, text, _data):
            if level == 4:  # GGML_LOG_LEVEL_ERROR
                sys.stderr.write("llama.cpp: " + ffi.string(text).decode(errors="replace"))

        _LOG_CALLBACK = _log
        get_lib().llama_log_set(_LOG_CALLBACK, ffi.NULL)
    return llama_cpp_py_sync


_LOG_CALLBACK = None


class LlamaCpp:
    """A GGUF loaded by llama.cpp: last-position logits and greedy decoding from token ids."""

    def __init__(self, path: Path, n_ctx: int = 512):
        lib = load_runtime()
        self.llm = lib.Llama(str(path), n_ctx=n_ctx, n_batch=n_ctx, n_gpu_layers=0, verbose=False,
                             n_threads=max(1, min(2, os.cpu_count() or 1)))
        self.n_vocab = self.llm.n_vocab

    def logits(self, ids: list[int]) -> np.ndarray:
        """float32 logits after `ids` (a fresh context each time: no state carried over)."""
        self.llm._clear_context_state()
        self.llm._eval_tokens(list(ids), 0)
        return self._last()

    def _last(self) -> np.ndarray:
        ffi, lib = self.llm._ffi, self.llm._lib
        ptr = lib.llama_get_logits_ith(self.llm._ctx, -1)
        return np.frombuffer(ffi.buffer(ptr, 4 * self.n_vocab), dtype=np.float32).copy()

    def greedy(self, ids: list[int], n: int, stop: set[int]) -> list[int]:
        self.llm._clear_context_state()
        past = self.llm._eval_tokens(list(ids), 0)
        out = []
        for _ in range(n):
            tok = int(self._last().argmax())
            if tok in stop:
                break
            out.append(tok)
            past = self.llm._eval_tokens([tok], past)
        return out

    def tokenize(self, text: str) -> list[int]:
        """llama.cpp's ids for an already rendered prompt (the template wrote BOS itself)."""
        return self.llm.tokenize(text, add_special=False, parse_special=True)

    def close(self):
        self.llm.close()


def mlx_logits(model, ids: list[int]) -> np.ndarray:
    import mlx.core as mx

    return np.array(model(mx.array([ids]))[0, -1].astype(mx.float32))


def mlx_greedy(model, ids: list[int], n: int, stop: set[int]) -> list[int]:
    """Greedy ids without a cache (the prompts here are short): one forward pass per token."""
    out = []
    for _ in range(n):
        tok = int(mlx_logits(model, list(ids) + out).argmax())
        if tok in stop:
            break
        out.append(tok)
    return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def compare(folder: Path, gguf: Path, prompts: list[str], max_tokens: int = 16, kind: str | None = None,
            log=print) -> dict:
    """Per prompt: the largest |difference| of next-token log-probabilities over the
    vocabulary, whether the top token agrees, the greedy continuations of both, and whether
    llama.cpp's tokenizer gives the folder's ids. Prompts are rendered with the folder's
    chat template when it has one (a user turn), as the runs are trained.

    The MLX model runs in float32 (not bfloat16 activations), and with `kind` (the GGUF's
    tensor type) its weights are first rounded as the file holds them (olelo.gguf_export.
    as_written): what is left is llama.cpp's arithmetic and any error of the export. How far
    the file's rounding itself moves the float model is reported apart (`float_*`)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm import load

    from olelo.gguf_export import as_written

    model, tok = load(str(folder))
    model.set_dtype(mx.float32)
    ids_of = {}
    for text in prompts:
        if getattr(tok, "chat_template", None):
            messages = [{"role": "user", "content": text}]
            ids_of[text] = (tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=False),
                            tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        else:
            ids_of[text] = (tok.encode(text), text)
    float_logits = {text: mlx_logits(model, ids) for text, (ids, _) in ids_of.items()}
    if kind is not None:
        rounded = [(k, mx.array(as_written(np.array(v), kind))) for k, v in tree_flatten(model.parameters())
                   if v.ndim >= 2]
        model.update(tree_unflatten(rounded))
    cpp = LlamaCpp(gguf)
    stop = set(getattr(tok, "eos_token_ids", None) or [tok.eos_token_id])
    rows = []
    try:
        for text in prompts:
            ids, rendered = ids_of[text]
            a, b = mlx_logits(model, ids), cpp.logits(ids)
            if a.shape != b.shape:
                raise UserError(f"{gguf}: llama.cpp's vocabulary has {b.shape[0]} logits, the model {a.shape[0]}")
            lp = np.abs(log_softmax(a) - log_softmax(b))
            mine, theirs = mlx_greedy(model, ids, max_tokens, stop), cpp.greedy(ids, max_tokens, stop)
            rows.append({
                "prompt": text, "prompt_tokens": len(ids),
                "max_abs_logit_diff": float(np.abs(a - b).max()),
                "max_abs_logprob_diff": float(lp.max()),
                "top_token_same": int(a.argmax()) == int(b.argmax()),
                "float_max_abs_logprob_diff": float(np.abs(log_softmax(float_logits[text]) - log_softmax(b)).max()),
                "float_top_token_same": int(float_logits[text].argmax()) == int(b.argmax()),
                "greedy_same": mine == theirs,
                "mlx": tok.decode(mine), "llama_cpp": tok.decode(theirs),
                "tokenizer_same": cpp.tokenize(rendered) == list(ids),
            })
            r = rows[-1]
            log(f"  {text[:40]!r}: max |log-prob diff| {r['max_abs_logprob_diff']:.3g} (float weights: "
                f"{r['float_max_abs_logprob_diff']:.3g}), top token {'same' if r['top_token_same'] else 'DIFFERENT'}; "
                f"greedy {'same' if r['greedy_same'] else 'differs'}"
                f"\n    mlx      : {r['mlx']!r}\n    llama.cpp: {r['llama_cpp']!r}")
    finally:
        cpp.close()
    return {"prompts": rows,
            "max_abs_logit_diff": max(r["max_abs_logit_diff"] for r in rows),
            "max_abs_logprob_diff": max(r["max_abs_logprob_diff"] for r in rows),
            "mlx_weights": f"rounded as the {kind} file holds them" if kind else "the folder's, in float32",
            "float_max_abs_logprob_diff": max(r["float_max_abs_logprob_diff"] for r in rows),
            "float_top_token_agreement": sum(r["float_top_token_same"] for r in rows) / len(rows),
            "top_token_agreement": sum(r["top_token_same"] for r in rows) / len(rows),
            "greedy_agreement": sum(r["greedy_same"] for r in rows) / len(rows),
            "tokenizer_agreement": sum(r["tokenizer_same"] for r in rows) / len(rows)}
