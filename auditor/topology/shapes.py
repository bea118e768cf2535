"""The path shapes people read: one item per listener and slot (ALB port → TG ports → nginx port →
the slot's ports), and each as one line — what the reports show and the diff compares as `paths`."""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property

from auditor.model.keys import Keys
from auditor.model.snapshot import Snapshot, TargetGroup
from auditor.topology.estate import Forward, SlotPath, Unit


class Shapes:
    """The shapes part of a Topology (auditor.topology.paths)."""

    snapshot: Snapshot
    keys: Keys
    target_groups: dict[str, TargetGroup]
    units: list[Unit]
    forward_actions: list[Forward]
    slot_paths: list[SlotPath]

    @cached_property
    def path_items(self) -> list[dict[str, object]]:
        """One item per listener and slot: ALB port → TG ports → nginx port → the slot's ports."""
        tgs_of_listener: dict[str, set[str]] = defaultdict(set)
        for forward in self.forward_actions:
            tgs_of_listener[forward.listener_arn] |= {t.arn for t in forward.action.target_groups}
        paths_of_tg: dict[str, list[SlotPath]] = defaultdict(list)
        for sp in self.slot_paths:
            for tg in sp.unit.for_slot(sp.slot):
                paths_of_tg[tg.arn].append(sp)
        # Under a declared alb switch a listener will forward to each slot's TG in turn.
        declared_siblings = {tg.arn: {t.arn for t in unit.target_groups}
                             for unit in self.units if unit.per_slot for tg in unit.target_groups}
        items: list[dict[str, object]] = []
        for listener in sorted(self.snapshot.resources.listeners, key=lambda x: self.keys.listener[x.arn]):
            key = self.keys.listener[listener.arn]
            tg_arns = set(tgs_of_listener[listener.arn])
            tg_arns |= {s for arn in tg_arns for s in declared_siblings.get(arn, ())}
            by_slot: dict[str | None, list[SlotPath]] = defaultdict(list)
            seen: set[int] = set()
            for arn in sorted(tg_arns):
                for sp in paths_of_tg.get(arn, []):
                    if id(sp) not in seen:
                        seen.add(id(sp))
                        by_slot[sp.slot].append(sp)
            if not by_slot:
                tgs = sorted({f"TG:{self.target_groups[a].port}" for a in tg_arns if a in self.target_groups})
                actions = sorted({a.type for a in listener.default_actions if a.type != "forward"})
                items.append({"key": key, "alb": f"ALB:{listener.port}", "target_groups": ",".join(tgs) or None,
                              "nginx": None, "app": None, "reached": None, "actions": ",".join(actions) or None})
                continue
            for slot, paths in sorted(by_slot.items(), key=lambda kv: kv[0] or ""):
                pairs = [(sp, t, r) for sp in paths for t, r in sp.traffic]
                pairs = [p for p in pairs if p[2].served] or pairs  # under the alb switch: the TG of the slot
                nginx = sorted({(sp.host.nginx_port_for(t.port) or t.port) for sp, t, r in pairs
                                if r.via == "nginx"})
                published = sorted({p for sp in paths for p in (sp.host.published(slot) if slot else [])})
                items.append({
                    "key": f"{key}/{slot}" if slot else key,
                    "alb": f"ALB:{listener.port}",
                    "target_groups": ",".join(f"TG:{p}" for p in sorted({t.port for _, t, _ in pairs})) or None,
                    "nginx": ",".join(f"nginx:{p}" for p in nginx) or None,
                    "app": f"{slot}:{','.join(map(str, published)) or '-'}" if slot else "app",
                    "reached": all(sp.served for sp in paths),
                    "actions": None,
                })
        return items

    def shapes(self) -> list[str]:
        """Each listener's path shape in one line, e.g. ``ALB:443 → TG:80 → nginx:80 → app{blue:3000, green:4000}``;
        a slot the path does not reach is marked ✗."""
        by_listener: dict[str, list[dict[str, object]]] = defaultdict(list)
        for item in self.path_items:
            by_listener[str(item["key"]).split("/")[0]].append(item)
        lines = []
        for items in by_listener.values():
            hops = {tuple(i[k] for k in ("alb", "target_groups", "nginx", "actions")) for i in items}
            groups = [items] if len(hops) == 1 else [[i] for i in items]
            for group in groups:
                first = group[0]
                parts = [str(first["alb"])] + [str(first[k]) for k in ("actions", "target_groups", "nginx") if first[k]]
                apps = [f"{i['app']}{'' if i['reached'] in (True, None) else ' ✗'}" for i in group if i["app"]]
                if apps:
                    parts.append("app{" + ", ".join(apps) + "}" if any(":" in a for a in apps) else apps[0])
                lines.append(" → ".join(parts))
        return lines
