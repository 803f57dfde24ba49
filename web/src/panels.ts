/**
 * One panel per simulator. A panel owns its parameters (kept in the URL under its id), its form
 * and how it renders a result; the run itself happens in the worker (simulators.ts, same id).
 * sched_ext or qdisc simulators add a panel to PANELS.
 */
import { tcpPanel } from "./panels/tcp.js";

export interface PanelContext {
  /** The panel's parameters as they are in the URL (defaults filled in). */
  params: Record<string, string>;
  /** Keep changed parameters in the URL. */
  save(params: Record<string, string>): void;
  /** Run the panel's simulator in the worker. */
  run(params: Record<string, string>, progress: (nowNs: number, durationNs: number) => void): Promise<unknown>;
  /** Objects the user dropped (their paths, dropped/NAME). */
  dropped(): string[];
}

export interface SimPanel {
  id: string;
  title: string;
  defaults: Record<string, string>;
  mount(root: HTMLElement, ctx: PanelContext): void;
}

export const PANELS: SimPanel[] = [tcpPanel];
