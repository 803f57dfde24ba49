/** A small element builder: h("td", { class: "n" }, "text", child). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: (Node | string | undefined | null | false)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== undefined && c !== null && c !== false) el.append(c);
  return el;
}

export function clear(el: Element, ...children: (Node | string)[]): void {
  el.replaceChildren(...children);
}

/** The page's state in the URL's fragment: shareable, and a static host never sees it. */
export function readState(): URLSearchParams {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

export function writeState(s: URLSearchParams): void {
  const next = `#${s.toString()}`;
  if (location.hash !== next) history.replaceState(null, "", next);
}
