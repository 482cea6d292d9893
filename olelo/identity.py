"""What a run's result depends on beyond its stamp, recorded at training and checked on
every rerun, eval and fuse, and the check that a split folder is what split.py wrote
(the lock that keeps one process per run is olelo.runs.RunLock).

Used by train.py, translate.py, perplexity.py and fuse.py:

    data_identity(dir)        sha256 of train/valid/test.jsonl, and sealed.jsonl where the
                              split has one (the manifest's "data")
    dataset_label(dir)        the split folder's name in run stamps (olelo.data)
    model_identity(model)     local folder: resolved path, sha256 of config.json and the
                              weights index, weight file sizes, their sha256 when they are
                              small (as the tiny models are), else a sha256 of ~16 MB sampled
                              across each; Hub id: cached revision
    changes(manifest, ...)    what differs from the run's record, one phrase each (model=:
                              the model given now, e.g. another folder of the same name)
    verify_split(dir)         hashes against the split manifest, and no held-out (test,
                              sealed) text in train/valid
"""

from __future__ import annotations

from pathlib import Path

import olelo
from olelo import UserError
from olelo.data import ALL_SPLITS, HELD_OUT, dataset_label  # noqa: F401 (dataset_label: train.py's stamp)

# sealed.jsonl is recorded and checked where it exists; a run recorded before sealed
# splits has no sealed_sha256, and data_changes skips what a run did not record.
SPLITS = ALL_SPLITS
HASH_WEIGHTS_UP_TO = 256 << 20  # bytes: hash small weights whole; above, sizes stand for them
WHAT_TO_DO = "FORCE=1 trains a new attempt on what is there now (the old run is kept)"


def data_identity(data_dir) -> dict:
    d = Path(data_dir)
    info = {"path": str(data_dir)}
    manifest = d / "manifest.json"
    if manifest.is_file():
        info["manifest_sha256"] = olelo.sha256_file(manifest)
        settings = split_settings(manifest)
        if settings:
            info["split_settings"] = settings
    for split in SPLITS:
        f = d / f"{split}.jsonl"
        if f.is_file():
            info[f"{split}_sha256"] = olelo.sha256_file(f)
    return info


def split_settings(manifest_path: Path) -> dict:
    """The make variables that rebuild a split as it is (split.py's manifest): its seed,
    kind and, by stories, the block size asked for."""
    try:
        m = olelo.read_json(manifest_path, "split manifest")
    except UserError:
        return {}
    if not isinstance(m, dict) or "seed" not in m:
        return {}
    out = {"SPLIT_SEED": m["seed"], "SPLIT": m.get("split", "paragraphs")}
    if out["SPLIT"] == "stories":
        out["BLOCK_SIZE"] = m.get("block_size_asked", m.get("block_size"))
    return out


def rebuild_hint(manifest: dict) -> str:
    """How to rebuild a run's data as it was: the make command with its split's settings."""
    settings = (manifest.get("data") or {}).get("split_settings")
    if settings:
        return "make data " + " ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
    return "make data SPLIT_SEED=<the seed its split was made with> (SEED is training's seed)"


def model_identity(model: str) -> dict | None:
    """None when a Hub model is not in the local cache (nothing to compare without a download)."""
    folder = Path(model)
    if folder.is_dir():
        weights = sorted(folder.glob("*.safetensors"))
        ident = {"kind": "local", "path": str(folder.resolve()),
                 "weights": {f.name: f.stat().st_size for f in weights}}
        for name, key in (("config.json", "config_sha256"), ("model.safetensors.index.json", "index_sha256")):
            if (folder / name).is_file():
                ident[key] = olelo.sha256_file(folder / name)
        if sum(ident["weights"].values()) <= HASH_WEIGHTS_UP_TO:
            ident["weights_sha256"] = {f.name: olelo.sha256_file(f) for f in weights}
        else:  # other weights of the same shapes have the same sizes: a sample of their bytes tells them apart
            ident["weights_sample_sha256"] = {f.name: sample_sha256(f) for f in weights}
        return ident
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # an id the hub library rejects: mlx-lm will say what is wrong
        return None
    if not isinstance(cached, str):
        return None
    snapshot = Path(cached).parent
    return {"kind": "hub", "id": model, "revision": snapshot.name, "config_sha256": olelo.sha256_file(cached)}


SAMPLE_BYTES = 1 << 20


def sample_sha256(path: Path) -> str:
    """sha256 of a large file's size, its first and last MiB and 14 MiB-long samples between
    (~16 MB read, whatever the size)."""
    import hashlib

    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for i in range(16):
            f.seek(max(0, min(size - SAMPLE_BYTES, (size - SAMPLE_BYTES) * i // 15)))
            h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()


MODEL_KEYS = {"config_sha256": "config.json", "index_sha256": "weights index", "weights": "weight files",
              "weights_sha256": "weights", "weights_sample_sha256": "weights", "revision": "Hub revision"}
# Keys that tell one set of weights from another; without one in common, the model must be where it was.
WEIGHT_KEYS = ("weights_sha256", "weights_sample_sha256", "revision")


def where(ident: dict) -> str:
    return ident.get("path") or ident.get("id") or "?"


def model_changes(recorded: dict | None, now: dict | None, model: str) -> list[str]:
    if not recorded or not now:
        return []  # not recorded (older run) or not determinable offline
    differ = [label for key, label in MODEL_KEYS.items()
              if key in recorded and key in now and recorded[key] != now[key]]
    if not any(k in recorded and k in now for k in WEIGHT_KEYS) and where(recorded) != where(now):
        differ.append(f"trained from {where(recorded)}, its weights not comparable with these")
    differ = list(dict.fromkeys(differ))
    return [f"the model {model} is not the one trained from ({', '.join(differ)} changed)"] if differ else []


def data_changes(recorded: dict, data_dir, splits=SPLITS) -> list[str]:
    out = []
    for split in splits:
        want = (recorded or {}).get(f"{split}_sha256")
        if not want:
            continue
        f = Path(data_dir) / f"{split}.jsonl"
        if not f.is_file():
            out.append(f"{f} is gone (the run recorded sha256 {want[:12]}…)")
            continue
        have = olelo.sha256_file(f)
        if have != want:
            out.append(f"{f} has sha256 {have[:12]}…, the run was trained with {want[:12]}…")
    return out


def changes(manifest: dict, splits=SPLITS, model: str | None = None, model_too: bool = True) -> list[str]:
    """What differs now from what the run recorded: its data files and its model. `model`:
    the model given now (train.py's MODEL), compared with the recorded one; by default
    the run's own model path, as it is now. model_too=False: the data alone (scoring
    reads outputs already made, each checked against the model when it was made)."""
    data_dir = manifest.get("data_dir") or (manifest.get("data") or {}).get("path", "")
    found = data_changes(manifest.get("data") or {}, data_dir, splits)
    if not model_too:
        return found
    recorded_model = manifest.get("model", "")
    model = model or recorded_model
    recorded, now = manifest.get("model_identity"), model_identity(model)
    if not recorded and model != recorded_model and Path(model).resolve() != Path(recorded_model).resolve():
        # nothing recorded to compare (a Hub model not cached then): the name must be the same
        found.append(f"the model {model} is not the one trained from ({recorded_model})")
    found += model_changes(recorded, now, model)
    return found


def require_unchanged(manifest: dict, action: str, splits=SPLITS, remedy: str = WHAT_TO_DO,
                      model: str | None = None, model_too: bool = True) -> None:
    found = changes(manifest, splits, model, model_too)
    if found:
        raise UserError(f"run {manifest.get('stamp')}: cannot {action}: {'; '.join(found)}. {remedy}")


# ---------------------------------------------------------------- split folders

def verify_split(data_dir) -> str | None:
    """Refuse a split folder whose files are not the ones its manifest lists (a split
    interrupted, or files edited or copied in by hand) or whose test or sealed texts are
    in its train/valid. Returns a note for a folder without a manifest (nothing to verify)."""
    from olelo.data import find_leaks, load_dataset

    d = Path(data_dir)
    manifest_path = d / "manifest.json"
    if not manifest_path.is_file():
        return f"note: {d} has no manifest.json (not made by split.py): its splits are not checked for leaks"
    manifest = olelo.read_json(manifest_path, "split manifest")
    listed = manifest.get("outputs") or {f"{s}.jsonl": v.get("sha256") for s, v in (manifest.get("files") or {}).items()}
    for name, want in listed.items():
        f = d / name
        if not f.is_file():
            raise UserError(f"{f} is missing but {manifest_path} lists it; rebuild the data (make data)")
        if want and olelo.sha256_file(f) != want:
            raise UserError(f"{f} is not the file {manifest_path} lists (sha256 differs): the split was "
                            f"interrupted or edited; rebuild the data (make data)")
    splits = {s: load_dataset(d / f"{s}.jsonl", allow_empty=True) for s in SPLITS if (d / f"{s}.jsonl").is_file()}
    leaks = find_leaks({d.name: splits})
    if leaks:
        pairs = {held: {leak["pair_id"] for leak in leaks if leak["held_out"] == held} for held in HELD_OUT}
        counts = " and ".join(f"{len(found)} {held}" for held, found in pairs.items() if found)
        raise UserError(f"{d}: {counts} pair(s) also in train/valid (first: {leaks[0]['pair_id']}, "
                        f"{leaks[0]['side']} text in {leaks[0]['trained_in']}); rebuild the data (make data)")
    return None
