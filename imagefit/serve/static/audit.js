"use strict";
// The page at /audit: the findings of audit.csv, a decision for each, and FIXES.csv to download.
(() => {
  const { askToken, request, blobUrl, element } = imagefit;
  const decisions = new Map(); // finding id -> { path, action, label }

  function csvField(value) {
    return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
  }

  function fixesCsv(findings) {
    const rows = findings.filter((f) => decisions.has(f.id)).map((f) => decisions.get(f.id));
    return ["path,action,label", ...rows.map((d) => [d.path, d.action, d.label].map(csvField).join(","))].join("\n") + "\n";
  }

  function updateCount(findings) {
    const n = decisions.size;
    document.getElementById("count").textContent = n ? `${n} of ${findings.length} marked` : "nothing marked yet";
    document.getElementById("download").disabled = n === 0;
  }

  function controls(finding, labels, node, findings) {
    const name = `action-${finding.id}`;
    const choose = element("select", { "aria-label": `new label for ${finding.path}`, disabled: "" },
      ...labels.map((l) => element("option", { value: l, text: l })));
    const preferred = labels.includes(finding.suggested) && finding.suggested !== finding.given
      ? finding.suggested : labels.find((l) => l !== finding.given) || labels[0];
    choose.value = preferred || "";
    const radio = (action) => {
      const input = element("input", { type: "radio", name, value: action });
      return element("label", {}, input, ` ${action}`);
    };
    const set = element("fieldset", {}, radio("keep"), radio("relabel"), choose, radio("remove"));
    const record = () => {
      const picked = set.querySelector("input:checked");
      choose.disabled = !picked || picked.value !== "relabel";
      if (picked) {
        decisions.set(finding.id, { path: finding.path, action: picked.value, label: picked.value === "relabel" ? choose.value : "" });
      }
      node.classList.toggle("marked", Boolean(picked));
      updateCount(findings);
    };
    set.addEventListener("change", record);
    return set;
  }

  function findingCard(finding, labels, findings) {
    const picture = element("div", { class: "noimg", text: "…" });
    const node = element("article", { class: "finding", "data-id": finding.id, "data-path": finding.path }, picture,
      element("div", { class: "path", text: finding.path }),
      element("div", { class: "labels", text: finding.suggested ? `${finding.given} → ${finding.suggested}` : finding.given }),
      element("div", { class: "muted", text: `rank ${finding.rank} · score ${finding.score}` }));
    node.append(controls(finding, labels, node, findings));
    blobUrl(`/audit/thumb/${finding.id}`).then((url) => {
      picture.replaceWith(url ? element("img", { src: url, alt: finding.path }) : element("div", { class: "noimg", text: "no picture" }));
    });
    return node;
  }

  function render(audit) {
    const kinds = [...new Set(audit.findings.map((f) => f.kind))];
    document.getElementById("audit-line").textContent =
      `${audit.folder}: ${audit.findings.length} findings (${kinds.map((k) => `${audit.findings.filter((f) => f.kind === k).length} ${k}`).join(", ")})`;
    document.getElementById("kinds").replaceChildren(...kinds.map((kind) => element("section", { class: "kind" },
      element("h2", { text: kind }),
      element("div", { class: "findings" }, ...audit.findings.filter((f) => f.kind === kind)
        .map((f) => findingCard(f, audit.labels, audit.findings))))));
    document.getElementById("download").onclick = () => {
      const link = element("a", { href: URL.createObjectURL(new Blob([fixesCsv(audit.findings)], { type: "text/csv" })), download: "FIXES.csv" });
      document.body.append(link);
      link.click();
      link.remove();
    };
  }

  async function load() {
    const answer = await request("/audit/findings");
    if (answer.status === 401) {
      askToken(load);
      return;
    }
    if (!answer.ok) {
      document.getElementById("audit-line").textContent = answer.body.error;
      return;
    }
    render(answer.body);
  }
  load();
})();
