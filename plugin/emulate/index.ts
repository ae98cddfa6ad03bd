// Public surface of the emulator (used by `defender-fluent emulate`, tests, the demo and bench/).
export { startEmulator, type Emulator, type EmulatorOptions, type AlertVersion } from './server.js';
export { emulateCommand, emulatorOptionsFromCli, type EmulateCommandOptions } from './command.js';
export { parseFaults, FaultSpecError, type FaultSpec, type FaultKind } from './faults.js';
export { Served, type RequestLogEntry } from './served.js';
export { allRoles } from './entra.js';
export type { ActionOutcome, ActionStatus } from './actions.js';
