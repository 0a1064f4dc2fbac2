// A worker on Camunda's own external-task client, unmodified, against
// Casewire's /engine-rest. What it does with a task depends on the task's
// `mode` variable, so one run covers every verb:
//   complete    extend the lock, then complete with variables
//   fail-twice  report a failure with 1 retry left (back after 200 ms),
//               then one with 0 retries: an incident
//   bpmn        raise a business (BPMN) error with variables
//   unlock      the first time lock it again and unlock it (the task comes
//               back), the second time complete it
// It prints one JSON line per step and exits 0 once EXPECT tasks are
// finished, or 1 after DEADLINE_MS.
import { Client, Variables } from "camunda-external-task-client-js";

const { BASE_URL, TOKEN } = process.env;
const EXPECT = Number(process.env.EXPECT ?? "1");
const DEADLINE_MS = Number(process.env.DEADLINE_MS ?? "60000");
if (!BASE_URL || !TOKEN) {
  console.error("set BASE_URL and TOKEN");
  process.exit(2);
}

const bearer = (config) => ({ ...config, headers: { ...config.headers, Authorization: `Bearer ${TOKEN}` } });
const client = new Client({
  baseUrl: BASE_URL,
  workerId: "camunda-js-worker",
  maxTasks: 2,
  interval: 50,
  asyncResponseTimeout: 2000,
  lockDuration: 20000,
  interceptors: bearer,
  autoPoll: false,
});

const finished = new Set();
const seen = new Set();
const log = (step, task, extra = {}) => console.log(JSON.stringify({ step, id: task.id, ...extra }));
const finish = (task) => {
  finished.add(task.id);
  if (finished.size >= EXPECT) {
    client.stop();
    setTimeout(() => process.exit(0), 100);
  }
};

client.on("handler:error", (e) => console.error("handler error", e?.message ?? e));
client.on("poll:error", (e) => console.error("poll error", e?.message ?? e));

client.subscribe("fraud-score", { variables: ["mode", "amount"] }, async ({ task, taskService }) => {
  const mode = task.variables.get("mode");
  try {
    if (mode === "complete") {
      await taskService.extendLock(task, 60000);
      log("extended", task);
      await taskService.complete(task, new Variables().setAll({ score: 0.3, verdict: { ok: true } }));
      log("completed", task);
      finish(task);
    } else if (mode === "fail-twice") {
      const last = task.retries === 1;
      await taskService.handleFailure(task, {
        errorMessage: last ? "scoring service still down" : "scoring service down",
        errorDetails: "HTTP 503",
        retries: last ? 0 : 1,
        retryTimeout: last ? 0 : 200,
      });
      log(last ? "incident" : "failed", task, { retries: task.retries });
      if (last) finish(task);
    } else if (mode === "bpmn") {
      await taskService.handleBpmnError(task, "suspected-fraud", "score too high", new Variables().set("score", 0.97));
      log("bpmn-error", task);
      finish(task);
    } else if (mode === "unlock" && !seen.has(task.id)) {
      seen.add(task.id);
      await taskService.lock(task, 10000);
      await taskService.unlock(task);
      log("unlocked", task);
    } else {
      await taskService.complete(task, new Variables().set("after", "unlock"));
      log("completed", task);
      finish(task);
    }
  } catch (e) {
    log("error", task, { message: e.message, status: e.httpStatusCode, type: e.type });
  }
});

client.start();
setTimeout(() => {
  console.error(`only ${finished.size} of ${EXPECT} tasks finished within ${DEADLINE_MS} ms`);
  process.exit(1);
}, DEADLINE_MS);
