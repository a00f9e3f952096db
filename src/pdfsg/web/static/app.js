// pdfsg upload page: send PDF files to POST api/predict, draw each curve and its ranking.
// Everything that comes from the server or from a file name is inserted with textContent
// (never parsed as HTML); charts are inline SVG built element by element.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉";
  const TOP_CHOICES = [1, 3, 5, 6, 10, 20];
  const $ = (id) => document.getElementById(id);

  // compositions[i]: what the user typed for file i (undefined: the file header's)
  const state = { files: [], compositions: [], info: null, results: null, controller: null };

  function el(tag, attrs = {}, text = null) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs = {}, text = null) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== null) node.textContent = String(text);
    return node;
  }

  // "P4_2/mnm" -> "P4₂/mnm"
  function prettySymbol(symbol) {
    return String(symbol).replace(/_(\d)/g, (_, d) => SUBSCRIPTS[Number(d)]);
  }

  function setStatus(text, bad = false) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("bad", bad);
  }

  function niceStep(span, target) {
    const raw = span / target;
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  // ------------------------------------------------------------------ charts

  function curveChart(r, x) {
    const W = 520, H = 250, L = 48, R = 12, T = 12, B = 40;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "curve-chart" });
    svg.appendChild(svgEl("title", {}, "normalised G(r) on the model grid"));
    if (!r.length) return svg;
    const r0 = r[0], r1 = r[r.length - 1];
    const ymin = -0.05, ymax = 1.05;
    const px = (v) => L + ((v - r0) / (r1 - r0 || 1)) * (W - L - R);
    const py = (v) => T + (1 - (v - ymin) / (ymax - ymin)) * (H - T - B);
    const step = niceStep(r1 - r0, 6);
    for (let t = Math.ceil(r0 / step) * step; t <= r1 + 1e-9; t += step) {
      svg.appendChild(svgEl("line", { x1: px(t), x2: px(t), y1: T, y2: H - B, class: "grid" }));
      svg.appendChild(
        svgEl("text", { x: px(t), y: H - B + 15, "text-anchor": "middle", class: "tick" },
          Number(t.toFixed(6)))
      );
    }
    for (const t of [0, 0.5, 1]) {
      svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: py(t), y2: py(t), class: "grid" }));
      svg.appendChild(
        svgEl("text", { x: L - 6, y: py(t) + 4, "text-anchor": "end", class: "tick" }, t)
      );
    }
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    svg.appendChild(svgEl("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    const points = r.map((v, i) => `${px(v).toFixed(1)},${py(x[i]).toFixed(1)}`).join(" ");
    svg.appendChild(svgEl("polyline", { points, class: "curve" }));
    svg.appendChild(
      svgEl("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "label" },
        "r (Å)")
    );
    svg.appendChild(
      svgEl("text", {
        x: 13, y: (T + H - B) / 2, "text-anchor": "middle", class: "label",
        transform: `rotate(-90 13 ${(T + H - B) / 2})`,
      }, "G (normalised)")
    );
    return svg;
  }

  function barChart(predictions) {
    const rowH = 24, W = 520, L = 150, R = 58, T = 6;
    const H = T + rowH * predictions.length + 26;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "bar-chart" });
    svg.appendChild(svgEl("title", {}, "probability of each space group"));
    const pmax = Math.max(...predictions.map((p) => p.probability), 1e-9);
    const scale = Math.min(1, Math.ceil(pmax * 10) / 10 || 1);
    const bx = (p) => ((W - L - R) * p) / scale;
    predictions.forEach((p, i) => {
      const y = T + i * rowH;
      svg.appendChild(
        svgEl("text", { x: L - 8, y: y + rowH / 2 + 4, "text-anchor": "end", class: "label" },
          `${prettySymbol(p.symbol)} (${p.space_group})`)
      );
      svg.appendChild(
        svgEl("rect", {
          x: L, y: y + 3, height: rowH - 6, width: Math.max(bx(p.probability), 1),
          class: i === 0 ? "bar best" : "bar",
        })
      );
      svg.appendChild(
        svgEl("text", { x: L + bx(p.probability) + 5, y: y + rowH / 2 + 4, class: "tick" },
          p.probability.toFixed(3))
      );
    });
    const yAxis = T + rowH * predictions.length;
    svg.appendChild(svgEl("line", { x1: L, x2: L, y1: T, y2: yAxis, class: "axis" }));
    svg.appendChild(
      svgEl("line", { x1: L, x2: L + bx(scale), y1: yAxis, y2: yAxis, class: "axis" })
    );
    for (const t of [0, scale / 2, scale]) {
      svg.appendChild(
        svgEl("text", { x: L + bx(t), y: yAxis + 15, "text-anchor": "middle", class: "tick" },
          Number(t.toFixed(2)))
      );
    }
    svg.appendChild(
      svgEl("text", { x: L - 8, y: yAxis + 15, "text-anchor": "end", class: "tick" },
        "probability")
    );
    return svg;
  }

  // ------------------------------------------------------------------ results

  function rankingTable(predictions) {
    const table = el("table", { class: "ranking" });
    const head = el("tr");
    for (const h of ["rank", "space group", "no.", "crystal system", "probability"]) {
      head.appendChild(el("th", { scope: "col" }, h));
    }
    table.appendChild(el("thead")).appendChild(head);
    const body = table.appendChild(el("tbody"));
    predictions.forEach((p, i) => {
      const tr = body.appendChild(el("tr"));
      tr.appendChild(el("td", { class: "num" }, i + 1));
      tr.appendChild(el("td", { class: "symbol", title: p.symbol }, prettySymbol(p.symbol)));
      tr.appendChild(el("td", { class: "num" }, p.space_group));
      tr.appendChild(el("td", {}, p.crystal_system));
      tr.appendChild(el("td", { class: "num" }, p.probability.toFixed(3)));
    });
    return table;
  }

  const ORIGIN = { option: "as typed", header: "from the file header", none: "unknown" };

  // the composition of file `index`: filled from the header, editable; a change re-ranks
  function compositionField(res, index) {
    const form = el("form", { class: "composition" });
    const label = form.appendChild(el("label", {}, "Composition "));
    const settings = res.data_settings || {};
    const typed = state.compositions[index];
    const input = label.appendChild(el("input", {
      type: "text", name: "composition", spellcheck: "false", autocomplete: "off",
      placeholder: "e.g. La0.72Ca0.28MnO3", "aria-label": `composition of ${res.file}`,
    }));
    input.value = typed !== undefined ? typed : (settings.composition || "");
    const origin = settings.composition_from || (typed ? "option" : "none");
    const used = settings.composition_used ? "used by the model" : "not used by the model";
    let hint = res.error ? "" : ORIGIN[origin] || origin;
    if (hint && settings.composition) hint += `, ${used}`;
    form.appendChild(el("span", { class: "muted origin" }, hint));
    const apply = () => {
      const value = input.value.trim();
      if (state.compositions[index] === value) return; // Enter fires change and submit
      state.compositions[index] = value;
      submit();
    };
    input.addEventListener("change", apply);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      apply();
    });
    return form;
  }

  function resultCard(res, index) {
    const card = el("article", { class: "card" });
    card.appendChild(el("h2", {}, res.file));
    const ls = res.label_set;
    if (ls && ls.name !== "all") {
      card.appendChild(el("p", { class: "muted labelset" },
        `Label set ${ls.name}: ${ls.n_groups} of the model's ${ls.model_groups} groups, ` +
        "probabilities renormalised over them"));
    }
    if (res.error) {
      card.classList.add("failed");
      card.appendChild(el("p", { class: "error" }, res.error));
      card.appendChild(compositionField(res, index));
      return card;
    }
    card.appendChild(compositionField(res, index));
    const plots = card.appendChild(el("div", { class: "plots" }));
    const f1 = plots.appendChild(el("figure"));
    f1.appendChild(curveChart(res.r || [], res.x || []));
    f1.appendChild(el("figcaption", {}, "measured curve on the model grid (min-max normalised)"));
    const f2 = plots.appendChild(el("figure"));
    f2.appendChild(barChart(res.predictions));
    f2.appendChild(el("figcaption", {}, `top ${res.predictions.length} space groups`));
    card.appendChild(rankingTable(res.predictions));
    const top3 = (probs) =>
      Object.entries(probs || {})
        .filter(([, v]) => v >= 0.005)
        .slice(0, 3)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(", ");
    const systems = top3(res.crystal_systems);
    if (systems) card.appendChild(el("p", { class: "summary" }, `Crystal system: ${systems}`));
    const lattices = top3(res.bravais_lattices);
    if (lattices) card.appendChild(el("p", { class: "summary" }, `Bravais lattice: ${lattices}`));
    const laue = top3(res.laue_classes);
    if (laue) card.appendChild(el("p", { class: "summary" }, `Laue class: ${laue}`));
    const pset = res.prediction_set;
    if (pset && pset.symbols) {
      const level = Math.round(100 * pset.level);
      card.appendChild(
        el("p", { class: "summary pset" }, `${level}% set: ${pset.symbols.join(", ")} (${pset.method})`)
      );
    }
    if (res.uncertainty) {
      card.appendChild(el("p", { class: "summary answer" }, `Answer: ${res.uncertainty}`));
    }
    for (const n of res.notes || []) card.appendChild(el("p", { class: "muted note" }, n));
    if (res.refinement) card.appendChild(refinementBox(res.refinement));
    if (res.model) card.appendChild(el("p", { class: "muted" }, `Model: ${res.model}`));
    if (res.warnings && res.warnings.length) {
      const ul = card.appendChild(el("ul", { class: "warnings" }));
      for (const w of res.warnings) ul.appendChild(el("li", {}, w));
    }
    return card;
  }

  // the pdffit2 check of the top groups: combined ranking with each group's best fit
  function refinementBox(ref) {
    const box = el("div", { class: "refinement" });
    box.appendChild(el("h3", {}, "Checked by fitting candidate structures (pdffit2)"));
    if (ref.error) {
      box.appendChild(el("p", { class: "warnings" }, ref.error));
      return box;
    }
    const table = box.appendChild(el("table", { class: "refine" }));
    const head = table.appendChild(el("thead")).appendChild(el("tr"));
    for (const h of ["rank", "space group", "model rank", "best Rw", "best candidate"]) {
      head.appendChild(el("th", {}, h));
    }
    const body = table.appendChild(el("tbody"));
    for (const g of ref.ranking) {
      const tr = body.appendChild(el("tr"));
      const rw = g.best_rw === null || g.best_rw === undefined ? "–" : g.best_rw.toFixed(3);
      for (const v of [g.rank, `${g.symbol} (${g.space_group})`, g.model_rank, rw,
        g.best_candidate || "no candidate"]) tr.appendChild(el("td", {}, String(v)));
    }
    for (const n of ref.notes || []) box.appendChild(el("p", { class: "muted note" }, n));
    return box;
  }

  function showResults(results) {
    const box = $("results");
    box.replaceChildren(...results.map((res, i) => resultCard(res, i)));
    state.results = results;
    $("download").disabled = !results.length;
  }

  // ------------------------------------------------------------------ requests

  async function submit() {
    if (!state.files.length) return;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const form = new FormData();
    for (const f of state.files) form.append("files", f, f.name);
    if (state.compositions.some((c) => c !== undefined)) {
      state.files.forEach((_, i) => form.append("composition", state.compositions[i] || ""));
    }
    const params = new URLSearchParams({ top: $("top").value || "6" });
    const qmax = $("qmax").value.trim();
    if (qmax) params.set("qmax", qmax);
    const labelSet = $("label-set").value;
    if (labelSet && labelSet !== "all") params.set("label_set", labelSet);
    const refine = $("refine").checked;
    if (refine) params.set("refine", "6");
    const n = state.files.length;
    setStatus(`${refine ? "Ranking and fitting" : "Ranking"} ${n} file${n > 1 ? "s" : ""}…`);
    const t0 = performance.now();
    let response, body;
    try {
      response = await fetch(`api/predict?${params}`, {
        method: "POST", body: form, signal: controller.signal,
      });
      body = await response.json().catch(() => null);
    } catch (err) {
      if (err.name === "AbortError") return;
      setStatus(`The server did not answer (${err.message}).`, true);
      return;
    } finally {
      if (state.controller === controller) state.controller = null;
    }
    const ms = Math.round(performance.now() - t0);
    if (response.ok && Array.isArray(body)) {
      const failed = body.filter((r) => r.error).length;
      const done = `${body.length - failed} of ${body.length} ranked`;
      setStatus(`${done}${failed ? `, ${failed} failed` : ""} (${ms} ms).`, failed > 0);
      showResults(body);
    } else {
      const detail = body && body.detail ? String(body.detail) : `HTTP ${response.status}`;
      setStatus(`Error ${response.status}: ${detail}`, true);
      showResults(body && Array.isArray(body.results) ? body.results : []);
    }
  }

  function takeFiles(fileList) {
    state.files = Array.from(fileList || []);
    state.compositions = [];
    if (state.files.length) submit();
  }

  function downloadJson() {
    if (!state.results) return;
    const blob = new Blob([JSON.stringify(state.results, null, 2)], {
      type: "application/json",
    });
    const a = el("a", { href: URL.createObjectURL(blob), download: "pdfsg-predictions.json" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  // ------------------------------------------------------------------ start-up

  // the label sets the model can be restricted to (api/info), as the select's options
  function fillLabelSets(sets) {
    const select = $("label-set");
    if (!sets || !sets.length) return;
    select.replaceChildren();
    for (const s of sets) select.appendChild(el("option", { value: s.name }, s.description));
    select.value = "all";
  }

  function fillTop(nGroups) {
    const select = $("top");
    const choices = TOP_CHOICES.filter((k) => k < nGroups);
    select.replaceChildren();
    for (const k of choices) select.appendChild(el("option", { value: k }, k));
    select.appendChild(el("option", { value: nGroups }, `all ${nGroups}`));
    select.value = String(choices.includes(6) ? 6 : nGroups);
  }

  async function loadInfo() {
    try {
      const info = await (await fetch("api/info")).json();
      state.info = info;
      $("model-info").textContent =
        `Model ${info.model}: ${info.n_groups} space groups, r ${info.rmin.toFixed(2)}–` +
        `${info.rmax.toFixed(2)} Å, Qmax ${info.qmax} Å⁻¹ (pdfsg ${info.version}).`;
      const mb = (info.max_file_bytes / 1024 / 1024).toPrecision(3).replace(/\.?0+$/, "");
      $("limits").textContent = `Up to ${info.max_files} files at once, ${mb} MB each.`;
      fillTop(info.n_groups);
      fillLabelSets(info.label_sets);
    } catch (err) {
      $("model-info").textContent = `Could not read the model description (${err.message}).`;
      fillTop(230);
    }
  }

  function setUp() {
    const drop = $("drop");
    for (const ev of ["dragenter", "dragover"]) {
      drop.addEventListener(ev, (e) => {
        e.preventDefault();
        drop.classList.add("over");
      });
    }
    for (const ev of ["dragleave", "drop"]) {
      drop.addEventListener(ev, () => drop.classList.remove("over"));
    }
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      takeFiles(e.dataTransfer && e.dataTransfer.files);
    });
    // a file dropped beside the zone must not make the browser navigate away
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    $("file-input").addEventListener("change", (e) => {
      takeFiles(e.target.files);
      e.target.value = "";
    });
    $("top").addEventListener("change", submit);
    $("qmax").addEventListener("change", submit);
    $("label-set").addEventListener("change", submit);
    $("refine").addEventListener("change", submit);
    $("controls").addEventListener("submit", (e) => {
      e.preventDefault();
      submit();
    });
    $("download").addEventListener("click", downloadJson);
    loadInfo();
  }

  setUp();
})();
