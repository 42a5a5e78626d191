"""Small generated image trees (``root/<class>/<image>.png``) for the tests of your own image folders: every image is
one flat colour, so a resized pixel tells which file it came from."""
from __future__ import annotations

from pathlib import Path

from PIL import Image


def grey_level(label: int, index: int) -> int:
    """The grey level of image ``index`` of class ``label`` (unique per image for < 20 per class)."""
    return 10 + 12 * index + label


def make_tree(folder: Path, counts: dict[str, int], *, rgb: set[str] = frozenset(), size=(12, 9)) -> Path:
    """``folder/<class>/img<i>.png``: ``counts[class]`` flat images of grey level :func:`grey_level` (labels by
    sorted class name); classes in ``rgb`` are saved as RGB (value, 255 − value, 7)."""
    for label, name in enumerate(sorted(counts)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(counts[name]):
            v = grey_level(label, i)
            image = Image.new("RGB", size, (v, 255 - v, 7)) if name in rgb else Image.new("L", size, v)
            image.save(folder / name / f"img{i:02d}.png")
    return folder
