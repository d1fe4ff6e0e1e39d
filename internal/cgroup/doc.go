// Package cgroup gives every service a cgroup of its own, applies its
// resource limits (cpu, memory, pids), and makes that cgroup the unit that
// termination and SIGKILL reach, on cgroup v2, v1 and hybrid systems.
//
// The rules, explained in docs/cgroups.md:
//
//   - A service's cgroup is <horust's own cgroup in each hierarchy>/
//     <parent>/<EscapeName(service)>, never at the root of a hierarchy.
//     The parent, horust-<pid>-<random>, is this horust's alone and
//     flock'ed while it lives; RemoveStale removes those of horusts gone.
//   - On v2, horust moves into <parent>/.supervisor before it enables any
//     controller in its own cgroup, and never makes a cgroup threaded.
//   - A Group keeps open the files a stop needs (cgroup.procs,
//     cgroup.kill, cgroup.events): a stop needs no free descriptor.
//   - No escape window: the child is in its cgroups before it executes the
//     service's program. In the v2 tree clone3 places it there
//     (SysProcAttr.UseCgroupFD); v1 cgroups are joined by a re-exec step
//     of horust itself (ExecArg, MaybeExec) that then drops privileges and
//     executes the program.
//   - Limits live where the controller is: its v1 hierarchy when it has
//     one (so on a hybrid system), else the v2 tree.
//   - A limit that cannot be applied is an error that names what is
//     missing; a service without limits never fails for lack of cgroups.
//   - The Manager belongs to the supervisor loop. Nothing here reaps a
//     process, sleeps or polls: waiting for killed processes uses pidfds.
package cgroup
