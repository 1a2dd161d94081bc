"""The state machine, drawn from its ASL, with the path an execution took coloured.

Layout: each state's layer is its distance from ``StartAt`` (breadth first, so loops do not push it
down); states of one layer sit side by side. Drawn with matplotlib as SVG; each state's box has the SVG
id ``state-<Name>`` and a class-like colour: succeeded, retried, caught, failed, running, not visited.
"""

from __future__ import annotations

import io
from collections import deque
from typing import Any

COLOURS = {
    "succeeded": "#a5d6a7",
    "retried": "#fff59d",
    "caught": "#ffcc80",
    "failed": "#ef9a9a",
    "running": "#81d4fa",
    None: "#eceff1",
}


def transitions(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(next state, kind) for every way out of ``state``: next, choice, default, catch."""
    found = []
    if state.get("Next"):
        found.append((state["Next"], "next"))
    for choice in state.get("Choices", []):
        if choice.get("Next"):
            found.append((choice["Next"], "choice"))
    if state.get("Default"):
        found.append((state["Default"], "choice"))
    for catch in state.get("Catch", []):
        if catch.get("Next"):
            found.append((catch["Next"], "catch"))
    return found


def layers(definition: dict[str, Any]) -> dict[str, int]:
    states = definition["States"]
    depth = {definition["StartAt"]: 0}
    queue = deque([definition["StartAt"]])
    while queue:
        name = queue.popleft()
        for target, _kind in transitions(states.get(name, {})):
            if target in states and target not in depth:
                depth[target] = depth[name] + 1
                queue.append(target)
    for name in states:  # unreachable ones (none expected) at the bottom
        depth.setdefault(name, max(depth.values()) + 1)
    return depth


def draw_state_machine(definition: dict[str, Any], path: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    states = definition["States"]
    depth = layers(definition)
    rows: dict[int, list[str]] = {}
    for name in states:
        rows.setdefault(depth[name], []).append(name)
    status = {}
    for step in path:  # the last visit of a state decides its colour
        status[step["state"]] = step["status"]
    width = max(len(names) for names in rows.values())
    position = {}
    for level, names in rows.items():
        offset = (width - len(names)) / 2
        for n, name in enumerate(names):
            position[name] = (offset + n + 0.5, -level)

    fig, ax = plt.subplots(figsize=(max(8.0, width * 2.6), max(4.0, len(rows) * 0.75)), dpi=100)
    box_w, box_h = 2.2, 0.46
    scale_x = 2.6
    for name, state in states.items():
        x0, y0 = position[name]
        for target, kind in transitions(state):
            if target not in position:
                continue
            x1, y1 = position[target]
            taken = name in status and target in status
            ax.annotate(
                "",
                xy=(x1 * scale_x, y1 + box_h / 2),
                xytext=(x0 * scale_x, y0 - box_h / 2),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": "#ef6c00" if kind == "catch" else ("#37474f" if taken else "#b0bec5"),
                    "linestyle": "--" if kind == "catch" else "-",
                    "linewidth": 1.3 if taken else 0.7,
                    "shrinkA": 0,
                    "shrinkB": 0,
                    "connectionstyle": "arc3,rad=0.08",
                },
            )
    for name in states:
        x, y = position[name]
        colour = COLOURS.get(status.get(name))
        box = FancyBboxPatch(
            (x * scale_x - box_w / 2, y - box_h / 2),
            box_w,
            box_h,
            boxstyle="round,pad=0.02",
            facecolor=colour,
            edgecolor="#263238" if name in status else "#90a4ae",
            linewidth=1.4 if name in status else 0.6,
        )
        box.set_gid(f"state-{name}")
        ax.add_patch(box)
        label = name if len(name) <= 28 else name[:26] + "…"
        ax.text(x * scale_x, y, label, ha="center", va="center", fontsize=6.5)
    ax.set_xlim(-0.2, width * scale_x + 0.2)
    ax.set_ylim(-max(rows) - 0.6, 0.6)
    ax.axis("off")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
