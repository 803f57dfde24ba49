// The playground (web/): `node scripts/playground.mjs` builds the static site into dist/playground and
// serves it on http://localhost:8080 (--port N, --build-only). The built files need nothing but a
// static host: the committed objects of bpf/obj are inside the bundle.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** "structops:objects": every bpf/obj/*.bpf.o and bpf/obj/sim/*.bpf.o, as { "name" or "sim/name": bytes }. */
const objectsPlugin = {
  name: "structops-objects",
  setup(b) {
    b.onResolve({ filter: /^structops:objects$/ }, () => ({ path: "objects", namespace: "structops" }));
    b.onLoad({ filter: /.*/, namespace: "structops" }, () => {
      const dir = join(root, "bpf/obj");
      // Objects built against the host's types, and (sim/) against the simulated kernel's.
      const names = ["", "sim/"].flatMap((sub) =>
        readdirSync(join(dir, sub))
          .filter((n) => n.endsWith(".bpf.o"))
          .sort()
          .map((n) => sub + n),
      );
      const lines = names.map((n, i) => `import o${i} from ${JSON.stringify(join(dir, n))};`);
      lines.push(`export default { ${names.map((n, i) => `${JSON.stringify(n)}: o${i}`).join(", ")} };`);
      return { contents: lines.join("\n"), loader: "js", resolveDir: dir, watchFiles: names.map((n) => join(dir, n)) };
    });
  },
};

/** Build the site into OUT (default dist/playground); returns OUT. */
export async function buildSite(out = join(root, "dist/playground")) {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(root, "web/src/main.ts"), join(root, "web/src/sim_worker.ts")],
    outdir: out,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    loader: { ".o": "binary" },
    plugins: [objectsPlugin],
    logLevel: "warning",
  });
  for (const f of ["index.html", "style.css"]) copyFileSync(join(root, "web", f), join(out, f));
  return out;
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png" };

/** Serve DIR on 127.0.0.1:PORT (0: any free port); resolves to the server once listening. */
export function serveSite(dir, port = 8080) {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const p = resolve(dir, `.${decodeURIComponent(url.pathname)}`);
    let file = p.startsWith(resolve(dir)) ? p : "";
    try {
      if (file && statSync(file).isDirectory()) file = join(file, "index.html");
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok(server)));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const t0 = performance.now();
  const out = await buildSite();
  console.log(`built ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (!args.includes("--build-only")) {
    const i = args.indexOf("--port");
    const server = await serveSite(out, i >= 0 ? Number(args[i + 1]) : 8080);
    console.log(`structops playground: http://localhost:${server.address().port}/`);
  }
}
