/**
 * The simulators the worker runs, one per panel: a function from the panel's parameters to a
 * result the panel renders. A simulator of another subsystem adds its line here and its panel in
 * panels.ts.
 */
import { runTcp, type TcpParams } from "./panels/tcp_run.js";

export type Simulator = (
  params: Record<string, string>,
  progress: (nowNs: number, durationNs: number) => void,
) => unknown;

export const SIMULATORS: Record<string, Simulator> = {
  tcp: (params, progress) => runTcp(params as unknown as TcpParams, progress),
};
