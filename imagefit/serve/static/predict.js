"use strict";
// The page at /: images picked or dropped are posted to /predict, each shown with its top classes.
(() => {
  const { askToken, request, element } = imagefit;
  const TOP = 5;
  const PARALLEL = 4;
  const waiting = [];
  let running = 0;

  async function showModel() {
    const answer = await request("/model");
    const line = document.getElementById("model-line");
    if (answer.status === 401) {
      line.textContent = "the model is hidden until you give the token";
      askToken(showModel);
      return;
    }
    const m = answer.body;
    line.textContent = `${m.run} · ${m.backbone} (${m.strategy}) · ${m.classes.length} classes: ${m.classes.join(", ")}`;
  }

  function card(file) {
    const picture = element("img", { alt: file.name, src: URL.createObjectURL(file) });
    const result = element("div", { class: "result" },
      element("div", { class: "thumb" }, picture),
      element("div", { class: "about" },
        element("div", { class: "name", text: file.name }),
        element("div", { class: "top-class", text: "…" }),
        element("div", { class: "bars" })));
    document.getElementById("results").prepend(result);
    return result;
  }

  function bars(node, row) {
    const classes = Object.keys(row).filter((k) => k.startsWith("p_"))
      .map((k) => [k.slice(2), row[k]]).sort((a, b) => b[1] - a[1]).slice(0, TOP);
    // a multi-label run answers the labels predicted (each from its threshold) instead of one class
    const labels = row.labels ? (row.labels.join(", ") || "no label") : null;
    const answer = labels ?? row.class;
    // an image unlike the training images gets no confident class: the guess is shown as a guess
    node.classList.toggle("unfamiliar", row.unknown === 1);
    node.querySelector(".top-class").textContent = row.unknown === 1
      ? `unlike the training images (closest: ${answer})` : answer;
    const list = node.querySelector(".bars");
    list.replaceChildren(...classes.map(([name, p]) => element("div", { class: "bar-row", "data-class": name },
      element("span", { class: "label", text: name }),
      element("span", { class: "track" }, element("span", { class: "fill", style: `width:${(100 * p).toFixed(1)}%` })),
      element("span", { class: "value", text: `${(100 * p).toFixed(1)} %` }))));
  }

  async function predict(file, node) {
    const form = new FormData();
    form.append("file", file, file.name);
    const answer = await request("/predict", { method: "POST", body: form });
    if (answer.ok) {
      node.classList.add("done");
      bars(node, answer.body[0]);
      return;
    }
    node.classList.add("failed");
    node.querySelector(".top-class").textContent = answer.body.error;
    if (answer.status === 401) askToken(() => enqueue([file]));
  }

  function pump() {
    while (running < PARALLEL && waiting.length) {
      const [file, node] = waiting.shift();
      running += 1;
      predict(file, node).catch((error) => {
        node.classList.add("failed");
        node.querySelector(".top-class").textContent = `no answer: ${error}`;
      }).finally(() => { running -= 1; pump(); });
    }
  }

  function enqueue(files) {
    const images = [...files].filter((f) => f.type.startsWith("image/") || f.type === "");
    const skipped = files.length - images.length;
    document.getElementById("message").textContent = skipped ? `${skipped} file(s) skipped: not images` : "";
    for (const file of images) waiting.push([file, card(file)]);
    pump();
  }

  const input = document.getElementById("files");
  input.addEventListener("change", () => { enqueue(input.files); input.value = ""; });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    enqueue(event.dataTransfer.files);
  });
  showModel();
})();
