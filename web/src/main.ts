/**
 * The playground: pick one of our BPF objects or drop a .bpf.o, see what the loader, the verifier
 * and the kernel make of it, and run the simulators. Everything runs in this page (the
 * simulations in a worker); the state is in the URL's fragment.
 */
import { btfDumpC } from "../../src/btf/dump_c.js";
import { dumpBtfTypeRaw } from "../../src/btf/dump_raw.js";
import { clear, h, readState, writeState } from "./dom.js";
import { errorLine, inspectObject, type ObjectReport, type ProgRow } from "./inspect.js";
import { bundledNames, DROP_DIR, installPlatform, objectPath } from "./objects.js";
import { PANELS, type SimPanel } from "./panels.js";
import type { SimMessage, SimRequest } from "./sim_worker.js";

const mem = installPlatform();
const state = readState();
const dropped = new Map<string, Uint8Array>();

const DEFAULT_OBJECT = "tcp_cubic.bpf.o";
const TABS = ["sections", "maps", "programs", "btf", "registration"] as const;

const objSelect = h("select", { id: "object" });
const logSelect = h("select", { id: "log-level" }, h("option", { value: "1" }, "1"), h("option", { value: "2" }, "2"));
const fileInput = h("input", { type: "file", id: "file", accept: ".o" });
const errorEl = h("div", { id: "error", class: "error", role: "alert" });
const summaryEl = h("div", { id: "summary" });
const tabBar = h("nav", { class: "tabs", id: "object-tabs" });
const tabBody = h("div", { id: "object-view" });
let report: ObjectReport | undefined;

function refreshObjects(): void {
  const names = [...bundledNames, ...dropped.keys()];
  objSelect.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
}

/** Inspect the chosen object; a broken one gives one line in #error and leaves the rest empty. */
function show(name: string): void {
  const level = logSelect.value === "2" ? 2 : 1;
  state.set("obj", name);
  state.set("log", String(level));
  writeState(state);
  objSelect.value = name;
  errorEl.textContent = "";
  report = undefined;
  try {
    report = inspectObject(objectPath(name), level);
  } catch (e) {
    errorEl.textContent = `Error: ${errorLine(e)}`;
    clear(summaryEl);
    clear(tabBody);
    return;
  }
  const r = report;
  const accepted = r.programs.filter((p) => p.verdict?.accepted).length;
  clear(
    summaryEl,
    h(
      "p",
      {},
      h("b", {}, r.name),
      ` — ${r.size} bytes, ${r.sections.length} sections, ${r.maps.length} maps, ${r.programs.length} programs`,
      ` (${accepted} accepted by the verifier)`,
    ),
    ...(r.loadError ? [h("p", { class: "error", id: "load-error" }, `load: ${r.loadError}`)] : []),
  );
  showTab(state.get("tab") ?? "programs");
}

function table(head: string[], rows: (string | number | Node)[][], id?: string): HTMLTableElement {
  return h(
    "table",
    { id },
    h("thead", {}, h("tr", {}, ...head.map((x) => h("th", {}, x)))),
    h(
      "tbody",
      {},
      ...rows.map((r) =>
        h("tr", {}, ...r.map((c) => h("td", { class: typeof c === "number" ? "n" : undefined }, c as string))),
      ),
    ),
  );
}

function showTab(tab: string): void {
  if (!(TABS as readonly string[]).includes(tab)) tab = "programs";
  state.set("tab", tab);
  writeState(state);
  for (const b of tabBar.querySelectorAll("button")) b.classList.toggle("on", b.dataset.tab === tab);
  const r = report;
  if (!r) {
    clear(tabBody);
    return;
  }
  if (tab === "sections") {
    const hex = (x: number) => `0x${x.toString(16)}`;
    clear(
      tabBody,
      table(
        ["#", "name", "type", "flags", "size"],
        r.sections.map((s) => [s.index, s.name, hex(s.type), hex(s.flags), s.size]),
        "sections",
      ),
    );
  } else if (tab === "maps") {
    clear(
      tabBody,
      table(
        ["name", "type", "key", "value", "max entries"],
        r.maps.map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries]),
        "maps",
      ),
    );
  } else if (tab === "programs") showPrograms(r);
  else if (tab === "btf") showBtf(r);
  else showRegistration(r);
}

function showPrograms(r: ObjectReport): void {
  const list = h("ul", { class: "proglist", id: "programs" });
  const detail = h("div", { class: "progdetail" });
  const pick = (p: ProgRow) => {
    state.set("prog", p.name);
    writeState(state);
    for (const li of list.children) li.classList.toggle("on", (li as HTMLElement).dataset.prog === p.name);
    const v = p.verdict;
    const verdict = !v
      ? h("p", { class: "verdict" }, "not attempted (an earlier program was refused, or the load failed first)")
      : v.accepted
        ? h("p", { class: "verdict ok" }, "accepted by the verifier")
        : h(
            "p",
            { class: "verdict error" },
            `refused: ${v.error} (${v.errno})${v.insn !== undefined ? ` at insn ${v.insn}` : ""}`,
          );
    const rows: Node[] = [];
    for (const i of p.insns) {
      if (i.src) rows.push(h("div", { class: "src" }, `; ${i.src.trim()} [${i.file}:${i.line}:${i.col}]`));
      rows.push(
        h(
          "div",
          { class: v?.insn === i.idx ? "insn bad" : "insn" },
          h("span", { class: "idx" }, String(i.idx).padStart(5)),
          `: ${i.text}`,
        ),
      );
    }
    clear(
      detail,
      h(
        "h3",
        {},
        `${p.name} `,
        h(
          "small",
          {},
          `section ${p.section}, ${p.type}${p.autoload ? "" : " (not loaded by default: verified alone)"}`,
        ),
      ),
      verdict,
      h(
        "div",
        { class: "cols" },
        h("div", {}, h("h4", {}, "disassembly"), h("pre", { class: "disasm", id: "disasm" }, ...rows)),
        h(
          "div",
          {},
          h("h4", {}, `verifier log (level ${logSelect.value})`),
          h("pre", { class: "log", id: "verifier-log" }, v?.log ?? ""),
        ),
      ),
    );
  };
  for (const p of r.programs) {
    const cls = p.verdict ? (p.verdict.accepted ? "ok" : "bad") : "skip";
    const li = h("li", { "data-prog": p.name, class: cls }, p.name);
    li.addEventListener("click", () => pick(p));
    list.append(li);
  }
  clear(tabBody, h("div", { class: "split" }, list, detail));
  const want = r.programs.find((p) => p.name === state.get("prog")) ?? r.programs[0];
  if (want) pick(want);
}

function showBtf(r: ObjectReport): void {
  const btf = r.btf;
  if (!btf) {
    clear(tabBody, h("p", {}, "no .BTF section"));
    return;
  }
  const search = h("input", { id: "btf-search", placeholder: "search types by name", value: state.get("q") ?? "" });
  const list = h("ul", { class: "typelist", id: "btf-types" });
  const detail = h("pre", { class: "cdump", id: "btf-c" });
  const all = Array.from({ length: btf.nrTypes - 1 }, (_, i) => i + 1);
  const select = (id: number) => {
    for (const li of list.children) li.classList.toggle("on", (li as HTMLElement).dataset.id === String(id));
    let c: string;
    try {
      c = btfDumpC(btf, { ids: [id], header: false });
    } catch (e) {
      c = errorLine(e);
    }
    detail.textContent = `${dumpBtfTypeRaw(btf, btf.typeById(id))}\n\n${c}`;
  };
  const fill = () => {
    const q = search.value.trim().toLowerCase();
    state.set("q", q);
    writeState(state);
    const ids = all.filter((id) => q === "" || btf.nameOf(id).toLowerCase().includes(q)).slice(0, 2000);
    list.replaceChildren(
      ...ids.map((id) => {
        const t = btf.typeById(id);
        const li = h("li", { "data-id": id }, h("span", { class: "id" }, `[${id}]`), ` ${t.name || "(anon)"}`);
        li.addEventListener("click", () => select(id));
        return li;
      }),
    );
  };
  search.addEventListener("input", fill);
  const whole = h("button", { type: "button", id: "btf-dump-all" }, "C dump of every type");
  whole.addEventListener("click", () => {
    detail.textContent = btfDumpC(btf);
  });
  fill();
  clear(tabBody, h("div", { class: "toolbar" }, search, whole), h("div", { class: "split" }, list, detail));
}

function showRegistration(r: ObjectReport): void {
  if (r.loadError) {
    clear(tabBody, h("p", { class: "error" }, `not registered: the load failed: ${r.loadError}`));
    return;
  }
  if (r.registrations.length === 0) {
    clear(tabBody, h("p", {}, "no struct_ops maps"));
    return;
  }
  clear(
    tabBody,
    table(
      ["map", "struct_ops", "map id", "result", "state", "refcnt"],
      r.registrations.map((g) => [
        g.map,
        g.kind ?? "",
        g.mapId ?? "",
        g.ok ? "registered" : g.errno ? `refused: ${g.error} (${g.errno})` : (g.error ?? ""),
        g.state ?? "",
        g.refcnt ?? "",
      ]),
      "registrations",
    ),
  );
}

async function dropFile(f: File): Promise<void> {
  const bytes = new Uint8Array(await f.arrayBuffer());
  const name = `${DROP_DIR}/${f.name}`;
  mem.files.set(name, bytes);
  dropped.set(name, bytes);
  refreshObjects();
  show(name);
  for (const el of document.querySelectorAll(".panel")) el.dispatchEvent(new Event("dropped"));
}

// The simulations' worker: one at a time, started on first use.
let worker: Worker | undefined;
function runInWorker(
  panel: string,
  params: Record<string, string>,
  progress: (nowNs: number, durationNs: number) => void,
): Promise<unknown> {
  worker ??= new Worker(new URL("./sim_worker.js", import.meta.url), { type: "module" });
  const w = worker;
  return new Promise((resolve, reject) => {
    w.onmessage = (e: MessageEvent<SimMessage>) => {
      const m = e.data;
      if (m.type === "progress") progress(m.nowNs, m.durationNs);
      else if (m.type === "done") resolve({ ...(m.result as object), ms: m.ms });
      else reject(new Error(m.message));
    };
    w.onerror = (e) => reject(new Error(e.message));
    const req: SimRequest = { panel, params, files: Object.fromEntries(dropped) };
    w.postMessage(req);
  });
}

function mountPanel(p: SimPanel, root: HTMLElement): void {
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.defaults)) params[k] = state.get(`${p.id}.${k}`) ?? v;
  p.mount(root, {
    params,
    save(next) {
      for (const [k, v] of Object.entries(next)) {
        if (v === p.defaults[k]) state.delete(`${p.id}.${k}`);
        else state.set(`${p.id}.${k}`, v);
      }
      writeState(state);
    },
    run: (params, progress) => runInWorker(p.id, params, progress),
    dropped: () => [...dropped.keys()],
  });
}

function layout(): void {
  for (const t of TABS) {
    const b = h("button", { type: "button", "data-tab": t }, t);
    b.addEventListener("click", () => showTab(t));
    tabBar.append(b);
  }
  const drop = h("label", { class: "drop", id: "drop" }, "drop a .bpf.o here, or ", fileInput);
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f) void dropFile(f);
  });
  fileInput.addEventListener("change", () => {
    const f = fileInput.files?.[0];
    if (f) void dropFile(f);
  });
  objSelect.addEventListener("change", () => show(objSelect.value));
  logSelect.addEventListener("change", () => show(objSelect.value));

  const panelTabs = h("nav", { class: "tabs", id: "panel-tabs" });
  const panelBody = h("div", {});
  for (const p of PANELS) {
    const root = h("section", { class: "panel", id: `panel-${p.id}`, "data-panel": p.id });
    mountPanel(p, root);
    panelBody.append(root);
    const b = h("button", { type: "button", "data-panel": p.id }, p.title);
    b.addEventListener("click", () => selectPanel(p.id));
    panelTabs.append(b);
  }
  const selectPanel = (id: string) => {
    state.set("panel", id);
    writeState(state);
    for (const b of panelTabs.querySelectorAll("button")) b.classList.toggle("on", b.dataset.panel === id);
    for (const s of panelBody.querySelectorAll<HTMLElement>(".panel")) s.hidden = s.dataset.panel !== id;
  };

  document.body.append(
    h(
      "header",
      {},
      h("h1", {}, "structops playground"),
      h("label", {}, "object ", objSelect),
      h("label", {}, "verifier log level ", logSelect),
      drop,
    ),
    errorEl,
    h("section", { id: "inspector" }, summaryEl, tabBar, tabBody),
    h("h2", {}, "Simulators"),
    panelTabs,
    panelBody,
  );
  selectPanel(PANELS.some((p) => p.id === state.get("panel")) ? state.get("panel")! : PANELS[0]!.id);
}

layout();
refreshObjects();
logSelect.value = state.get("log") === "2" ? "2" : "1";
// Paint the page first, then load and verify the object (the main thread's longest step).
requestAnimationFrame(() =>
  setTimeout(() => {
    const first = state.get("obj");
    show(first && bundledNames.includes(first) ? first : DEFAULT_OBJECT);
    document.body.dataset.ready = String(performance.now());
  }, 0),
);
