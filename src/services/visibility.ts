// The one rule of who sees which task: a caller sees its own tasks, an admin sees every task.
// Every route that names or lists tasks (or their deliveries) goes through TaskStore.findFor/listFor, which apply it.

/** Who is asking: a Fastify request is one (request.caller, request.isAdmin). */
export type Viewer = { readonly caller: string, readonly isAdmin: boolean }

/** Whether the viewer may know the task exists. Another caller's task must look exactly like a missing one. */
export function canSee (viewer: Viewer, task: { caller: string }): boolean {
  return viewer.isAdmin || task.caller === viewer.caller
}

/** The caller a listing is restricted to; undefined for an admin (everyone's). */
export function callerScope (viewer: Viewer): string | undefined {
  return viewer.isAdmin ? undefined : viewer.caller
}
