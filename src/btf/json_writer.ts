/**
 * A JSON writer producing exactly bpftool's json_writer.c output, compact or pretty (`-p`):
 * fields on their own indented lines, array elements run together as `},{`.
 */
const INDENT = Array.from({ length: 16 }, (_, d) => `\n${"    ".repeat(d)}`);

export class JsonWriter {
  // One growing string: V8 keeps it as a rope, cheaper than an array of pieces joined at the end.
  private out = "";
  /** Characters written so far. */
  length = 0;
  private depth = 0;
  private sep = "";

  constructor(private readonly pretty = false) {}

  private emit(s: string): void {
    this.length += s.length;
    this.out += s;
  }

  private eor(): void {
    if (this.sep) this.emit(this.sep);
    this.sep = ",";
  }

  private eol(): void {
    if (!this.pretty) return;
    this.emit(INDENT[this.depth] ?? `\n${"    ".repeat(this.depth)}`);
  }

  private begin(c: string): void {
    this.eor();
    this.emit(c);
    this.depth++;
    this.sep = "";
  }

  private end(c: string): void {
    this.depth--;
    if (this.sep) this.eol();
    this.emit(c);
    this.sep = ",";
  }

  startObject(): void {
    this.begin("{");
  }

  endObject(): void {
    this.end("}");
  }

  startArray(): void {
    this.begin("[");
  }

  endArray(): void {
    this.end("]");
  }

  name(name: string): void {
    this.eor();
    this.eol();
    this.sep = "";
    this.emit(quote(name));
    this.emit(this.pretty ? ": " : ":");
  }

  /** A raw value (number, true/false/null) already formatted. */
  raw(v: string): void {
    this.eor();
    this.emit(v);
  }

  string(v: string): void {
    this.eor();
    this.emit(quote(v));
  }

  stringField(name: string, v: string): void {
    this.name(name);
    this.string(v);
  }

  uintField(name: string, v: number | bigint): void {
    this.name(name);
    this.raw(String(v));
  }

  intField(name: string, v: number | bigint): void {
    this.name(name);
    this.raw(String(v));
  }

  boolField(name: string, v: boolean): void {
    this.name(name);
    this.raw(v ? "true" : "false");
  }

  /** The document, with the newline jsonw_destroy() adds. */
  toString(): string {
    return `${this.out}\n`;
  }
}

const NEEDS_ESCAPE = /[\t\n\r\f\b\\"]/;

/** jsonw_puts: only these characters are escaped; everything else goes out as is. */
function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let r = '"';
  for (const ch of s) {
    switch (ch) {
      case "\t":
        r += "\\t";
        break;
      case "\n":
        r += "\\n";
        break;
      case "\r":
        r += "\\r";
        break;
      case "\f":
        r += "\\f";
        break;
      case "\b":
        r += "\\b";
        break;
      case "\\":
        r += "\\\\";
        break;
      case '"':
        r += '\\"';
        break;
      default:
        r += ch;
    }
  }
  return `${r}"`;
}
