// Which of pidone's own event lines in services mode (`pidone | web: started`) a level
// shows. The level is tini's verbosity (-v, -q, TINI_VERBOSITY, [settings] log_level:
// error 0, warn 1, info 2, debug 3, trace 4); services' own lines never pass through here.
//
// Each event is a warning or information. Warnings: what went wrong (an unexpected exit, a
// start that failed, not ready in time, killed at the stop, gave up, unhealthy, a notify
// channel closed or a sender refused, no control socket where one was asked for).
// Information: the rest (started, ready, done, adopted, restarting, stopping, an exit that
// a stop asked for or with status 0, the operator's requests). So `warn` (-q) keeps what needs a look, `error` shows no event at all.

/** The level from which events are shown when nothing sets one: all of them. */
export const EVENTS_DEFAULT_VERBOSITY = 2;

const WARNINGS = new Set(["not-ready", "killed", "gave-up", "unhealthy", "notify-closed", "notify-refused", "control-failed"]);

export type EventFields = Record<string, string | number | boolean | null>;

/**
 * The verbosity an event needs: 1 (warn) or 2 (info). An event without a name is a
 * failure's own line (a start that failed, no daemon to adopt). `stopping`: the service
 * was being stopped, so its exit was asked for.
 */
export function eventVerbosity(fields: EventFields | undefined, stopping: boolean): 1 | 2 {
  const name = fields?.event;
  if (typeof name !== "string") return 1;
  if (WARNINGS.has(name)) return 1;
  if (name === "exited") return stopping || fields?.code === 0 ? 2 : 1;
  return 2;
}
