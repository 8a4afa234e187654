// A frontend's use of the task API through a client generated from the served OpenAPI document
// (openapi-typescript + openapi-fetch), written against the contract (../shared/API.md), not against
// whatever the document says today. tests/e2e/test_typed_client.py generates generated/schema.d.ts,
// compiles this file with `tsc --strict` and runs it against a real `taskapi serve`:
//   TASKAPI_BASE_URL  the served API, e.g. http://127.0.0.1:8000
//   TASKAPI_TOKEN     a bearer token for TASKAPI_USER
// Every unexpected answer throws, so the process exits non-zero.
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./generated/schema.js";

// The shapes a form or a filter bar would be typed with, named by the contract's operationIds.
type NewTask = operations["createTask"]["requestBody"]["content"]["application/json"];
type TaskChanges = operations["updateTask"]["requestBody"]["content"]["application/json"];
type TaskFilters = NonNullable<operations["listTasks"]["parameters"]["query"]>;
type Task = components["schemas"]["TaskOut"];
type TagCount = operations["listTags"]["responses"][200]["content"]["application/json"][number];
type Change = components["schemas"]["ChangesOut"]["changes"][number];
type ProblemCode =
  operations["updateTask"]["responses"][412]["content"]["application/problem+json"]["code"];

// What the UI says for the problems it handles. The codes are an enum in the document, so a
// misspelt one does not compile.
const messages: Partial<Record<ProblemCode, string>> = {
  precondition_failed: "Someone else changed this task: reload it.",
  task_not_found: "This task no longer exists.",
};
// @ts-expect-error -- "precondition_faild" is not one of the problem codes
const misspelt: ProblemCode = "precondition_faild";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, what: string, seen?: unknown): asserts condition {
  if (!condition) throw new Error(`${what}; got ${JSON.stringify(seen)}`);
}

const user_id = setting("TASKAPI_USER");
const client = createClient<paths>({
  baseUrl: setting("TASKAPI_BASE_URL"),
  headers: { Authorization: `Bearer ${setting("TASKAPI_TOKEN")}` },
});

// The sync loop's one step: an upsert replaces the local task, a delete removes it.
function apply(local: Map<number, Task>, change: Change): void {
  if (change.op === "upsert") local.set(change.task.id, change.task);
  else local.delete(change.id);
}

async function main(): Promise<void> {
  // createTask with a title only: description is optional, nothing to pad with null.
  const groceries: NewTask = { title: "Buy groceries" };
  const created = await client.POST("/api/{user_id}/tasks", {
    params: { path: { user_id } },
    body: groceries,
  });
  check(created.response.status === 201 && created.data !== undefined, "createTask", created.error);
  const task = created.data;
  check(task.title === "Buy groceries" && task.description === null, "created task", task);
  check(task.completed === false && task.version === 1, "new task state", task);
  check(created.response.headers.get("Location") === `/api/${user_id}/tasks/${task.id}`, "Location");
  console.log(`created ${task.id}`);

  // createTask with a description as well.
  const second = await client.POST("/api/{user_id}/tasks", {
    params: { path: { user_id } },
    body: { title: "Call mum", description: "Sunday, after lunch" },
  });
  check(second.data !== undefined, "createTask with a description", second.error);
  check(second.data.description === "Sunday, after lunch", "description kept", second.data);

  // listTasks: the open tasks, a page of 10 (completed is a real boolean).
  const filters: TaskFilters = { completed: false, limit: 10 };
  const listed = await client.GET("/api/{user_id}/tasks", {
    params: { path: { user_id }, query: filters },
  });
  check(listed.data !== undefined, "listTasks", listed.error);
  const titles: string[] = listed.data.map((t) => t.title);
  check(titles.join("|") === "Buy groceries|Call mum", "open tasks, oldest first", titles);
  check(listed.response.headers.get("X-Total-Count") === "2", "X-Total-Count");

  // Rich fields, typed: priority a union of four strings, due_at a date-time string, tags string[].
  const priority: Task["priority"] = "high";
  // @ts-expect-error -- "urgent" is not a priority
  const urgent: Task["priority"] = "urgent";
  const dueAt: Task["due_at"] = "2026-12-24T17:00:00+01:00";
  const tags: Task["tags"] = ["Travel", "home"];
  const trip = await client.POST("/api/{user_id}/tasks", {
    params: { path: { user_id } },
    body: { title: "Plan trip", due_at: dueAt, priority, tags },
  });
  check(trip.data !== undefined, "createTask with rich fields", trip.error);
  check(trip.data.due_at === "2026-12-24T16:00:00.000000Z", "due_at in UTC", trip.data);
  check(trip.data.tags.join(",") === "home,travel" && trip.data.priority !== urgent, "tags", trip.data);
  const plants = await client.POST("/api/{user_id}/tasks", {
    params: { path: { user_id } },
    body: { title: "Water plants", priority: "medium", tags: ["home"] },
  });
  check(plants.data !== undefined, "createTask with a priority", plants.error);

  // listTasks filtered, sorted and paged: open, high or medium, most important first, one a page,
  // following the cursor of the Link header.
  const important: TaskFilters = {
    completed: false,
    priority: ["high", "medium"],
    tag: ["home"],
    sort: "-priority",
    limit: 1,
  };
  // @ts-expect-error -- "importance" is not a sort order
  const unsorted: TaskFilters = { sort: "importance" };
  check(unsorted.sort !== important.sort, "sort orders differ");
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.GET("/api/{user_id}/tasks", {
      params: { path: { user_id }, query: { ...important, cursor } },
    });
    check(page.data !== undefined, "filtered, sorted page", page.error);
    check(page.response.headers.get("X-Total-Count") === "2", "X-Total-Count of the filter");
    seen.push(...page.data.map((t) => t.title));
    const link = page.response.headers.get("Link");
    const next = link === null ? null : new URL(link.slice(1, link.indexOf(">")), "http://x");
    cursor = next?.searchParams.get("cursor") ?? undefined;
  } while (cursor !== undefined && seen.length < 5);
  check(seen.join("|") === "Plan trip|Water plants", "pages in priority order", seen);

  // listTags: each tag with how many tasks carry it.
  const tagged = await client.GET("/api/{user_id}/tags", { params: { path: { user_id } } });
  check(tagged.data !== undefined, "listTags", tagged.error);
  const counts: TagCount[] = tagged.data;
  check(counts.map((t) => `${t.tag}:${t.count}`).join(",") === "home:2,travel:1", "tags", counts);

  // listChanges: a second device's first sync, every page of it; keep `next` for later.
  const local = new Map<number, Task>();
  let since: string | undefined;
  for (let more = true; more; ) {
    const page = await client.GET("/api/{user_id}/tasks/changes", {
      params: { path: { user_id }, query: { since, limit: 2 } },
    });
    check(page.data !== undefined, "listChanges", page.error);
    for (const change of page.data.changes) apply(local, change);
    since = page.data.next;
    more = page.data.has_more;
  }
  check(local.has(task.id) && local.has(second.data.id), "first sync holds every task", [...local]);

  // getTask, keeping its ETag for a conditional update.
  const fetched = await client.GET("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id, task_id: task.id } },
  });
  check(fetched.data !== undefined, "getTask", fetched.error);
  const etag = fetched.response.headers.get("ETag");
  check(etag === '"1"', "ETag of a new task", etag);

  // updateTask with If-Match and only the field that changes.
  const changes: TaskChanges = { completed: true };
  const updated = await client.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id, task_id: task.id }, header: { "If-Match": etag } },
    body: changes,
  });
  check(updated.data !== undefined, "updateTask", updated.error);
  check(updated.data.completed && updated.data.completed_at !== null, "completed", updated.data);
  check(updated.data.title === "Buy groceries", "fields left out keep their value", updated.data);
  check(updated.response.headers.get("ETag") === '"2"', "ETag after the update");

  // The same If-Match again is stale now: 412, and nothing changes.
  const stale = await client.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id, task_id: task.id }, header: { "If-Match": etag } },
    body: { title: "Buy more groceries" },
  });
  check(stale.data === undefined && stale.response.status === 412, "stale If-Match", stale.data);
  check(stale.error.code === "precondition_failed", "412 code", stale.error);
  check(stale.error.status === 412, "problem status", stale.error);
  check(stale.error.code !== misspelt, "a misspelt code");
  console.log(`stale If-Match: ${stale.response.status} ${messages[stale.error.code]}`);

  // completeTask: idempotent on a task that is already complete.
  const completed = await client.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: { user_id, task_id: second.data.id } },
  });
  check(completed.data?.completed === true, "completeTask", completed.error);

  // deleteTask, then getTask is a 404 task_not_found.
  const deleted = await client.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id, task_id: task.id } },
  });
  check(deleted.error === undefined && deleted.response.status === 204, "deleteTask", deleted.error);
  const gone = await client.GET("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id, task_id: task.id } },
  });
  check(gone.data === undefined && gone.response.status === 404, "getTask after delete", gone.data);
  check(gone.error.code === "task_not_found", "404 code", gone.error);
  console.log(`after delete: ${gone.response.status} ${messages[gone.error.code]}`);

  // listChanges again from the kept token: the update, the completion and the deletion.
  const later = await client.GET("/api/{user_id}/tasks/changes", {
    params: { path: { user_id }, query: { since } },
  });
  check(later.data !== undefined && !later.data.has_more, "listChanges since", later.error);
  const ops = later.data.changes.map((c) => (c.op === "upsert" ? `upsert ${c.task.id}` : `delete ${c.id}`));
  check(ops.join(",") === `upsert ${second.data.id},delete ${task.id}`, "changes since", ops);
  for (const change of later.data.changes) apply(local, change);
  check(!local.has(task.id) && local.get(second.data.id)?.completed === true, "synced", [...local]);

  console.log("typed client flow: ok");
}

await main();
