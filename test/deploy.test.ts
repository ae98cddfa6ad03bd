// The deployment files, read the way their tools read them (no container runtime or cluster here):
// the Kubernetes manifests parsed as YAML and checked for what a working, locked-down pod needs, the
// config inside them validated by the project's own loader, the Dockerfile and the systemd units
// checked against the package they install.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { checkConfigText } from '../plugin/config/load.js';
import { packageRoot } from '../plugin/paths.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const k8sDir = join(packageRoot, 'deploy', 'kubernetes');
const manifests = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(k8sDir, f), 'utf8')).map((d) => {
      assert.deepEqual(d.errors, [], f);
      return { file: f, doc: d.toJS() as Obj };
    }),
  );
const find = (kind: string, file?: string) => manifests.find((m) => m.doc.kind === kind && (!file || m.file === file))!.doc;

const deployment = find('Deployment');
const pod = deployment.spec.template.spec as Obj;
const container = (name: string) => (pod.containers as Obj[]).find((c) => c.name === name)!;
const configMap = find('ConfigMap');
const defenderYaml = configMap.data['defender.yaml'] as string;
const defender = parse(defenderYaml) as Obj;
const portOf = (listen: string) => Number(listen.split(':').pop());
const volume = (name: string) => (pod.volumes as Obj[]).find((v) => v.name === name)!;

describe('deploy/kubernetes', () => {
  it('kustomization.yaml lists every manifest but the Secret example, and the Secret example is not applied', () => {
    const k = find('Kustomization');
    const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'secret.example.yaml');
    assert.deepEqual([...k.resources].sort(), files.sort());
  });

  it('one replica, Recreate: two collectors never share stateDir, even during a rollout', () => {
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, 'Recreate');
    assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
    assert.deepEqual(find('Service').spec.selector, deployment.spec.template.metadata.labels);
  });

  it("a red connector (the collector not ready) does not take the sidecar off the Service", () => {
    assert.ok(container('collector').readinessProbe);
    assert.equal(find('Service').spec.publishNotReadyAddresses, true);
  });

  it('the collector, the sidecar and a forward receiver run in the pod, non-root on read-only root file systems', () => {
    assert.deepEqual(
      (pod.containers as Obj[]).map((c) => c.name),
      ['collector', 'respond', 'fluent-bit'],
    );
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    for (const c of pod.containers as Obj[]) {
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], c.name);
    }
    assert.deepEqual(container('collector').args.slice(0, 1), ['run']);
    assert.deepEqual(container('respond').args.slice(0, 1), ['respond']);
    // the collector forwards to the receiver in the same pod, on the port it listens on
    const fb = parse(configMap.data['fluent-bit.yaml']) as Obj;
    const forward = (fb.pipeline.inputs as Obj[]).find((i) => i.name === 'forward')!;
    assert.equal(defender.output.type, 'forward');
    assert.equal(defender.output.host, '127.0.0.1');
    assert.equal(forward.port, defender.output.port);
    assert.notEqual(forward.self_hostname, defender.output.clientHostname);
  });

  it('both processes read defender.yaml from the ConfigMap and keep stateDir on the persistent volume: the only writable mount', () => {
    for (const name of ['collector', 'respond']) {
      const c = container(name);
      const configPath = c.args[c.args.indexOf('--config') + 1] as string;
      const mounts = c.volumeMounts as Obj[];
      const configMount = mounts.find((m) => configPath === `${m.mountPath}/defender.yaml`)!;
      assert.ok(volume(configMount.name).configMap.items.some((i: Obj) => i.key === 'defender.yaml'), name);
      const writable = mounts.filter((m) => !m.readOnly);
      assert.deepEqual(
        writable.map((m) => m.mountPath),
        [defender.stateDir],
        name,
      );
      const state = volume(writable[0]!.name);
      assert.equal(find('PersistentVolumeClaim').metadata.name, state.persistentVolumeClaim.claimName);
    }
    // the receiver's buffer too, on its own sub-path
    const fbState = (container('fluent-bit').volumeMounts as Obj[]).filter((m) => !m.readOnly);
    assert.ok(fbState.length === 1 && volume(fbState[0]!.name).persistentVolumeClaim);
    assert.ok(fbState[0]!.subPath !== container('collector').volumeMounts.find((m: Obj) => !m.readOnly).subPath);
  });

  it('probes hit the health endpoints on the ports the config listens on, on every interface (the kubelet uses the pod IP)', () => {
    const collector = container('collector');
    assert.ok(defender.health.listen.startsWith('0.0.0.0:'));
    assert.deepEqual(collector.livenessProbe.httpGet, { path: '/healthz', port: portOf(defender.health.listen) });
    assert.deepEqual(collector.readinessProbe.httpGet, { path: '/readyz', port: portOf(defender.health.listen) });
    const respond = container('respond');
    assert.ok(defender.respond.listen.startsWith('0.0.0.0:'));
    // the sidecar serves HTTPS (respond.tls): the probes must speak it
    assert.ok(defender.respond.tls);
    assert.deepEqual(respond.livenessProbe.httpGet, { path: '/healthz', port: portOf(defender.respond.listen), scheme: 'HTTPS' });
    assert.deepEqual(respond.readinessProbe.httpGet, { path: '/healthz', port: portOf(defender.respond.listen), scheme: 'HTTPS' });
    // the Service's named ports are the containers' ports
    for (const p of find('Service').spec.ports as Obj[]) {
      const owner = (pod.containers as Obj[]).find((c) => (c.ports ?? []).some((cp: Obj) => cp.name === p.targetPort))!;
      assert.equal(owner.ports.find((cp: Obj) => cp.name === p.targetPort).containerPort, p.port);
    }
  });

  it('every secret comes from the Secret: defender.yaml names files of its mount, Fluent Bit env of its keys; no literal secret', () => {
    const secret = find('Secret', 'secret.example.yaml');
    const keys = Object.keys(secret.stringData).sort();
    const mount = (container('collector').volumeMounts as Obj[]).find((m) => volume(m.name).secret)!;
    assert.equal(volume(mount.name).secret.secretName, secret.metadata.name);
    assert.deepEqual(volume(mount.name).secret.items.map((i: Obj) => i.key).sort(), keys);
    const refs = [...defenderYaml.matchAll(/\$\{file:([^}]+)\}/g)].map((m) => m[1]!);
    assert.deepEqual(refs.map((r) => r.replace(`${mount.mountPath}/`, '')).sort(), keys);
    for (const e of container('fluent-bit').env as Obj[]) {
      assert.equal(e.valueFrom.secretKeyRef.name, secret.metadata.name);
      assert.ok(keys.includes(e.valueFrom.secretKeyRef.key));
    }
    assert.ok(!/\$\{env:/.test(defenderYaml), 'secrets as files, not environment variables');
    // the sidecar's certificate and key: files of a TLS Secret mounted into the sidecar
    for (const [key, path] of [
      ['tls.crt', defender.respond.tls.cert],
      ['tls.key', defender.respond.tls.key],
    ]) {
      const m = (container('respond').volumeMounts as Obj[]).find((v) => path === `${v.mountPath}/${key}`)!;
      assert.ok(m.readOnly && volume(m.name).secret.items.some((i: Obj) => i.key === key && i.path === key), key);
    }
  });

  it("the ConfigMap's defender.yaml is a valid config, without a warning (secrets, certificate and stateDir in a temporary folder)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-deploy-'));
    try {
      mkdirSync(join(dir, 'secrets'));
      const mount = (container('collector').volumeMounts as Obj[]).find((m) => volume(m.name).secret)!;
      for (const key of Object.keys(find('Secret').stringData)) writeFileSync(join(dir, 'secrets', key), 'a-value-of-sixteen-or-more-chars\n');
      const pems = await generate([{ name: 'commonName', value: 'defender-fluent' }], { keySize: 2048, algorithm: 'sha256' });
      writeFileSync(join(dir, 'tls.crt'), pems.cert);
      writeFileSync(join(dir, 'tls.key'), pems.private);
      const local = { ...defender, stateDir: join(dir, 'state'), respond: { ...defender.respond, tls: { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') } } };
      const text = stringify(local).replaceAll(`\${file:${mount.mountPath}/`, `\${file:${join(dir, 'secrets')}/`);
      const checked = checkConfigText(join(dir, 'defender.yaml'), text, {});
      assert.deepEqual(checked.problems, []);
      assert.deepEqual(checked.warnings, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(packageRoot, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trimStart().startsWith('#'));
  const stages = lines.reduce<string[][]>((acc, l) => (/^FROM /i.test(l) ? [...acc, [l]] : (acc.at(-1)!.push(l), acc)), []);
  const final = stages.at(-1)!;
  const ignored = readFileSync(join(packageRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));

  it('multi-stage on node 20: the build stage compiles, the runtime stage installs production dependencies only', () => {
    assert.ok(stages.length >= 2);
    for (const s of stages) assert.match(s[0]!, /^FROM node:20(\.[\d.]+)?-slim\b/);
    assert.ok(stages[0]!.some((l) => /RUN npm ci\b/.test(l)) && stages[0]!.some((l) => /RUN npm run build\b/.test(l)));
    assert.ok(final.some((l) => /RUN npm ci .*--omit=dev/.test(l)));
    assert.ok(!lines.some((l) => /^ADD /i.test(l)), 'COPY, not ADD');
  });

  it('runs the packaged binary as a numeric non-root user, with stateDir on a volume it owns', () => {
    const user = final.filter((l) => /^USER /.test(l)).at(-1)!;
    assert.match(user, /^USER [1-9]\d*(:[1-9]\d*)?$/);
    const entry = JSON.parse(final.find((l) => /^ENTRYPOINT /.test(l))!.slice('ENTRYPOINT '.length)) as string[];
    const bin = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['defender-fluent']!;
    assert.deepEqual(entry, ['node', `/app/${bin}`]);
    assert.deepEqual(JSON.parse(final.find((l) => /^CMD /.test(l))!.slice(4)), ['run', '--config', '/etc/defender-fluent/defender.yaml']);
    const vol = final.find((l) => /^VOLUME /.test(l))!.slice(7).trim();
    assert.equal(vol, defender.stateDir, 'the Kubernetes stateDir is the image volume');
    assert.ok(final.some((l) => l.startsWith('RUN ') && l.includes(`chown ${user.slice(5)} ${vol}`)));
  });

  it('every file it copies from the context exists and is not excluded by .dockerignore; the runtime stage has what the package ships', () => {
    const copies = lines.filter((l) => /^COPY /.test(l) && !l.includes('--from='));
    for (const l of copies) {
      const sources = l.split(/\s+/).slice(1, -1);
      for (const s of sources) {
        assert.ok(existsSync(join(packageRoot, s)), s);
        assert.ok(!ignored.some((i) => s === i || s.startsWith(`${i}/`)), `${s} is in .dockerignore`);
      }
    }
    const shipped = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { files: string[] }).files.filter((f) => !f.startsWith('!') && !['README.md', 'examples', 'deploy'].includes(f));
    const copied = final.filter((l) => /^COPY /.test(l)).flatMap((l) => l.split(/\s+/).slice(1, -1).filter((s) => !s.startsWith('--')).map((s) => s.replace(/^\/src\//, '')));
    assert.deepEqual(
      shipped.filter((f) => !copied.includes(f)),
      [],
    );
    for (const i of ['node_modules', '.git', 'state', '.demo']) assert.ok(ignored.includes(i), i);
  });
});

describe('deploy/systemd', () => {
  /** [Section] key=value, repeated keys kept in order. */
  function unit(file: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    let section = '';
    for (const line of readFileSync(join(packageRoot, 'deploy', 'systemd', file), 'utf8').split('\n')) {
      if (!line.trim() || line.startsWith('#')) continue;
      const head = /^\[(.+)\]$/.exec(line);
      if (head) section = head[1]!;
      else {
        const i = line.indexOf('=');
        const key = `${section}.${line.slice(0, i)}`;
        out.set(key, [...(out.get(key) ?? []), line.slice(i + 1)]);
      }
    }
    return out;
  }
  const example = readFileSync(join(packageRoot, 'defender.example.yaml'), 'utf8');
  const envNames = [...new Set([...example.matchAll(/\$\{env:([A-Z0-9_]+)\}/g)].map((m) => m[1]!))].sort();

  for (const [file, command] of [
    ['defender-fluent.service', 'run'],
    ['defender-fluent-respond.service', 'respond'],
  ] as const) {
    it(`${file}: ${command} as a non-root user, secrets from EnvironmentFile=, state in StateDirectory=, no restart on a config error`, () => {
      const u = unit(file);
      assert.deepEqual(u.get('Service.ExecStart'), [`/usr/local/bin/defender-fluent ${command} --config /etc/defender-fluent/defender.yaml`]);
      assert.ok(u.get('Service.User')?.[0] && u.get('Service.User')![0] !== 'root');
      assert.deepEqual(u.get('Service.EnvironmentFile'), ['/etc/defender-fluent/defender-fluent.env']);
      assert.deepEqual(u.get('Service.StateDirectory'), ['defender-fluent']);
      assert.deepEqual(u.get('Service.ProtectSystem'), ['strict']);
      assert.deepEqual(u.get('Service.RestartPreventExitStatus'), ['2']);
      assert.deepEqual(u.get('Install.WantedBy'), ['multi-user.target']);
    });
  }

  it('the environment file example names every ${env:} secret of defender.example.yaml', () => {
    const names = readFileSync(join(packageRoot, 'deploy', 'systemd', 'defender-fluent.env.example'), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => l.split('=')[0]!)
      .sort();
    assert.deepEqual(names, envNames);
  });
});
