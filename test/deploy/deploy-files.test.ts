/**
 * The deployment files, parsed and checked field by field (no Docker engine runs here, so these checks and
 * `npm run check:container` are what keep them honest).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

interface Container {
  name: string;
  image: string;
  command?: string[];
  environment: Array<{ name: string; value: string }>;
  secrets?: Array<{ name: string; valueFrom: string }>;
  mountPoints: Array<{ sourceVolume: string; containerPath: string }>;
  linuxParameters?: { initProcessEnabled?: boolean };
  stopTimeout?: number;
  healthCheck?: { command: string[] };
  portMappings?: Array<{ containerPort: number }>;
  logConfiguration: { logDriver: string; options: Record<string, string> };
}
interface TaskDefinition {
  family: string;
  executionRoleArn: string;
  taskRoleArn?: string;
  requiresCompatibilities: string[];
  networkMode: string;
  cpu: string;
  memory: string;
  containerDefinitions: Container[];
  volumes: Array<{ name: string; efsVolumeConfiguration?: { transitEncryption?: string; fileSystemId: string } }>;
}

const api = JSON.parse(read('deploy/ecs/api.task-definition.json')) as TaskDefinition;
const worker = JSON.parse(read('deploy/ecs/worker.task-definition.json')) as TaskDefinition;
const env = (container: Container, name: string) => container.environment.find((entry) => entry.name === name)?.value;

describe('ECS task definitions', () => {
  for (const [name, task] of [
    ['api', api],
    ['worker', worker],
  ] as const) {
    const container = task.containerDefinitions[0]!;
    it(`${name}: Fargate, awsvpc, awslogs, REDIS_URL from secrets only, EFS with transit encryption, clean stop`, () => {
      expect(task.requiresCompatibilities).toEqual(['FARGATE']);
      expect(task.networkMode).toBe('awsvpc');
      expect(container.logConfiguration.logDriver).toBe('awslogs');
      expect(container.logConfiguration.options['awslogs-group']).toBeTruthy();
      expect(container.secrets?.map((secret) => secret.name)).toContain('REDIS_URL');
      expect(container.secrets!.find((secret) => secret.name === 'REDIS_URL')!.valueFrom).toMatch(/^arn:aws:(secretsmanager|ssm):/);
      expect(container.environment.map((entry) => entry.name)).not.toContain('REDIS_URL');
      const volume = task.volumes.find((entry) => entry.name === container.mountPoints[0]!.sourceVolume)!;
      expect(volume.efsVolumeConfiguration?.transitEncryption).toBe('ENABLED');
      expect(container.mountPoints[0]!.containerPath).toBe('/data');
      expect(env(container, 'UPLOAD_DIR')).toBe('/data/uploads');
      expect(env(container, 'PROCESSED_DIR')).toBe('/data/processed');
      expect(container.linuxParameters?.initProcessEnabled).toBe(true);
      // ECS waits stopTimeout after SIGTERM; the service must be done before then.
      expect(Number(env(container, 'SHUTDOWN_TIMEOUT_SECONDS'))).toBeLessThan(container.stopTimeout!);
      expect(container.stopTimeout).toBeLessThanOrEqual(120);
      // sharp needs room: at least 1 vCPU and 2 GiB.
      expect(Number(task.cpu)).toBeGreaterThanOrEqual(1024);
      expect(Number(task.memory)).toBeGreaterThanOrEqual(2048);
    });
  }

  it('both services run the same image; the API only enqueues, the worker runs the worker entry point', () => {
    expect(worker.containerDefinitions[0]!.image).toBe(api.containerDefinitions[0]!.image);
    expect(env(api.containerDefinitions[0]!, 'WORKER_CONCURRENCY')).toBe('0');
    expect(Number(env(worker.containerDefinitions[0]!, 'WORKER_CONCURRENCY'))).toBeGreaterThan(0);
    expect(worker.containerDefinitions[0]!.command).toEqual(['node', 'dist/src/worker.js']);
    expect(worker.volumes[0]!.efsVolumeConfiguration!.fileSystemId).toBe(api.volumes[0]!.efsVolumeConfiguration!.fileSystemId);
  });

  it('the worker runs jobs within a memory budget that leaves its task room, and the API refuses by the same budget', () => {
    for (const [workerTask, apiTask] of [
      [worker, api],
      [workerS3, apiS3],
    ] as const) {
      const budget = Number(env(workerTask.containerDefinitions[0]!, 'MEMORY_BUDGET_MB'));
      expect(budget).toBeGreaterThan(0);
      // Node, the queue and the allocator's slack need their share too.
      expect(Number(workerTask.memory) - budget).toBeGreaterThanOrEqual(1024);
      expect(env(apiTask.containerDefinitions[0]!, 'MEMORY_BUDGET_MB')).toBe(String(budget));
    }
  });

  it('the API sits behind the ALB, one proxy hop: TRUST_PROXY=1 (the worker serves no requests)', () => {
    expect(env(api.containerDefinitions[0]!, 'TRUST_PROXY')).toBe('1');
    expect(env(worker.containerDefinitions[0]!, 'TRUST_PROXY')).toBeUndefined();
  });

  it('the API container health check asks / with node, and the port is 8000', () => {
    const container = api.containerDefinitions[0]!;
    expect(container.healthCheck!.command.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    expect(container.healthCheck!.command[3]).toContain("fetch('http://127.0.0.1:8000/')");
    expect(container.portMappings![0]!.containerPort).toBe(8000);
  });

  it('the worker scales on the queue backlog the workers publish', () => {
    const policy = JSON.parse(read('deploy/ecs/worker.scaling-policy.json')) as {
      TargetTrackingScalingPolicyConfiguration: {
        CustomizedMetricSpecification: { Metrics: Array<{ MetricStat?: { Metric: { Namespace: string; MetricName: string } } }> };
      };
    };
    const metrics = policy.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics.map(
      (metric) => metric.MetricStat?.Metric.MetricName,
    );
    expect(metrics).toContain('QueueWaiting');
    const namespaces = policy.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics.map(
      (metric) => metric.MetricStat?.Metric.Namespace,
    );
    expect(namespaces).toContain('ImageService');
    expect(read('src/worker.ts')).toContain("'ImageService'");
  });
});

/** The S3 variants: the EFS task definitions with the volume swapped for STORAGE_URL and a task role that may use the bucket. */
const apiS3 = JSON.parse(read('deploy/ecs/api.s3.task-definition.json')) as TaskDefinition;
const workerS3 = JSON.parse(read('deploy/ecs/worker.s3.task-definition.json')) as TaskDefinition;
const S3_ROLE = 'arn:aws:iam::ACCOUNT_ID:role/image-service-s3-task';
/** Bucket and prefix, from the STORAGE_URL the S3 API task carries: the policy and the lifecycle rules must name the same ones. */
const storageUrl = /^s3:\/\/([a-z0-9A-Z_.-]+)\/([^/].*[^/])$/.exec(env(apiS3.containerDefinitions[0]!, 'STORAGE_URL') ?? '');
const [, BUCKET = '', PREFIX = ''] = storageUrl ?? [];
const BUCKET_ARN = `arn:aws:s3:::${BUCKET}`;
const OBJECTS_ARN = `arn:aws:s3:::${BUCKET}/${PREFIX}/*`;
const STORAGE_ENV = ['STORAGE_URL', 'AWS_REGION', 'S3_ENDPOINT', 'S3_FORCE_PATH_STYLE'];
const DISK_ENV = ['UPLOAD_DIR', 'PROCESSED_DIR', 'STATE_DIR'];

describe('ECS task definitions, S3 storage', () => {
  it('STORAGE_URL is s3://bucket/prefix, with the placeholders the other files use', () => {
    expect(storageUrl).not.toBeNull();
    expect(BUCKET).toBe('BUCKET_NAME');
    expect(PREFIX).toBe('image-service');
  });

  for (const [name, efs, s3] of [
    ['api', api, apiS3],
    ['worker', worker, workerS3],
  ] as const) {
    const efsContainer = efs.containerDefinitions[0]!;
    const container = s3.containerDefinitions[0]!;

    it(`${name}: no EFS volume, no mount, no disk-store paths; STORAGE_URL and AWS_REGION set`, () => {
      expect(s3.containerDefinitions).toHaveLength(1);
      expect(s3.volumes ?? []).toEqual([]);
      expect(JSON.stringify(s3)).not.toMatch(/efsVolumeConfiguration|fs-EFS_ID|fsap-/);
      expect(container.mountPoints ?? []).toEqual([]);
      for (const variable of DISK_ENV) expect(env(container, variable)).toBeUndefined();
      expect(env(container, 'STORAGE_URL')).toBe(`s3://${BUCKET}/${PREFIX}`);
      expect(env(container, 'AWS_REGION')).toBe('REGION');
      expect(env(container, 'AWS_REGION')).toBe(container.logConfiguration.options['awslogs-region']);
    });

    it(`${name}: credentials come from the task role, never from the environment or secrets`, () => {
      expect(s3.taskRoleArn).toBe(S3_ROLE);
      expect(s3.taskRoleArn).not.toBe(efs.taskRoleArn);
      const names = [...container.environment.map((entry) => entry.name), ...(container.secrets ?? []).map((secret) => secret.name)];
      for (const forbidden of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
        expect(names).not.toContain(forbidden);
    });

    it(`${name}: everything but storage is the EFS variant's (image, secrets, logging, stop, sizes, health check)`, () => {
      // Named first for readable failures, then the whole rest compared.
      expect(container.image).toBe(efsContainer.image);
      expect(container.command).toEqual(efsContainer.command);
      expect(container.secrets).toEqual(efsContainer.secrets);
      expect(container.logConfiguration).toEqual(efsContainer.logConfiguration);
      expect(container.stopTimeout).toBe(efsContainer.stopTimeout);
      expect(container.linuxParameters).toEqual({ initProcessEnabled: true });
      expect(container.healthCheck).toEqual(efsContainer.healthCheck);
      expect(container.portMappings).toEqual(efsContainer.portMappings);
      expect(s3.cpu).toBe(efs.cpu);
      expect(s3.memory).toBe(efs.memory);
      const { environment: _env, mountPoints: _mounts, ...rest } = container;
      const { environment: _efsEnv, mountPoints: _efsMounts, ...efsRest } = efsContainer;
      expect(rest).toEqual(efsRest);
      // The environment too, apart from the storage variables on either side.
      const without = (entries: Container['environment'], names: string[]) => entries.filter((entry) => !names.includes(entry.name));
      expect(without(container.environment, STORAGE_ENV)).toEqual(without(efsContainer.environment, DISK_ENV));
      const { family, taskRoleArn: _role, containerDefinitions: _defs, volumes: _volumes, ...task } = s3;
      const { family: efsFamily, taskRoleArn: _efsRole, containerDefinitions: _efsDefs, volumes: _efsVolumes, ...efsTask } = efs;
      expect(task).toEqual(efsTask);
      // A family of its own: registering one variant never becomes the other's latest revision.
      expect(family).toBe(`${efsFamily}-s3`);
    });
  }

  it('API and worker point at the same bucket and prefix with the same role (Redis jobs name files both must find)', () => {
    expect(env(workerS3.containerDefinitions[0]!, 'STORAGE_URL')).toBe(env(apiS3.containerDefinitions[0]!, 'STORAGE_URL'));
    expect(workerS3.taskRoleArn).toBe(apiS3.taskRoleArn);
    expect(env(apiS3.containerDefinitions[0]!, 'WORKER_CONCURRENCY')).toBe('0');
  });
});

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
const policy = JSON.parse(read('deploy/ecs/s3-task-role-policy.json')) as { Version: string; Statement: Statement[] };
const list = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
/** An IAM wildcard pattern (`*` any run, `?` one character) as a regular expression; case-sensitive, as for ARNs and s3:prefix. */
const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/**
 * Whether the policy allows `action` on `resource` for a request with `context` (condition keys, e.g. s3:prefix). Only Allow
 * statements and the StringLike / StringEquals operators are understood; anything else in the file fails the evaluation loudly.
 */
function allows(action: string, resource: string, context: Record<string, string> = {}): boolean {
  return policy.Statement.some((statement) => {
    if (statement.Effect !== 'Allow') throw new Error(`unexpected Effect ${statement.Effect}`);
    if (!list(statement.Action).some((pattern) => glob(pattern).test(action))) return false;
    if (!list(statement.Resource).some((pattern) => glob(pattern).test(resource))) return false;
    return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
      Object.entries(keys).every(([key, values]) => {
        const actual = context[key];
        // IAM: a key absent from the request never matches a String* operator, and always matches its IfExists form.
        if (actual === undefined) return operator.endsWith('IfExists');
        if (operator === 'StringLike' || operator === 'StringLikeIfExists') return list(values).some((value) => glob(value).test(actual));
        if (operator === 'StringEquals') return list(values).includes(actual);
        throw new Error(`unexpected condition operator ${operator}`);
      }),
    );
  });
}

/** The IAM actions each S3 call the service makes needs, on which resource (what the S3 API reference lists for each). */
const needs = (key: string): Array<[call: string, action: string, resource: string, context?: Record<string, string>]> => [
  ['PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${key}`],
  ['CreateMultipartUpload / UploadPart / CompleteMultipartUpload', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${key}`],
  ['AbortMultipartUpload', 's3:AbortMultipartUpload', `arn:aws:s3:::${BUCKET}/${key}`],
  ['GetObject / HeadObject / CopyObject source', 's3:GetObject', `arn:aws:s3:::${BUCKET}/${key}`],
  ['CopyObject destination', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${key}`],
  ['DeleteObject / DeleteObjects', 's3:DeleteObject', `arn:aws:s3:::${BUCKET}/${key}`],
  ['ListObjectsV2', 's3:ListBucket', BUCKET_ARN, { 's3:prefix': key }],
];

describe('S3 task role policy', () => {
  const statements = policy.Statement;
  const actions = statements.flatMap((statement) => list(statement.Action));
  const resources = statements.flatMap((statement) => list(statement.Resource));

  it('is an identity policy of Allow statements with Action and Resource only (no Not*, no Principal)', () => {
    expect(policy.Version).toBe('2012-10-17');
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) {
      expect(statement.Effect).toBe('Allow');
      expect(Object.keys(statement).sort()).toEqual(expect.arrayContaining(['Action', 'Effect', 'Resource']));
      for (const key of Object.keys(statement)) expect(['Sid', 'Effect', 'Action', 'Resource', 'Condition']).toContain(key);
    }
  });

  it('grants exactly the listed actions: no wildcards, nothing else', () => {
    expect([...new Set(actions)].sort()).toEqual(
      [
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:ListBucketMultipartUploads',
        's3:PutObject',
      ].sort(),
    );
    for (const action of actions) expect(action).not.toMatch(/[*?]/);
  });

  it('names only the bucket and the objects under the prefix: never *, never another bucket', () => {
    expect([...new Set(resources)].sort()).toEqual([BUCKET_ARN, OBJECTS_ARN].sort());
    for (const resource of resources) expect(resource).not.toBe('*');
    const objectActions = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'];
    for (const statement of statements) {
      const objectLevel = list(statement.Action).every((action) => objectActions.includes(action));
      const bucketLevel = list(statement.Action).every((action) => !objectActions.includes(action));
      expect(objectLevel || bucketLevel).toBe(true); // a mixed statement would hand bucket actions an object ARN, or the reverse
      expect(list(statement.Resource)).toEqual([objectLevel ? OBJECTS_ARN : BUCKET_ARN]);
    }
  });

  it('restricts listing to the prefix; ListBucketMultipartUploads has no s3:prefix key, so it carries no such condition', () => {
    const listBucket = statements.filter((statement) => list(statement.Action).includes('s3:ListBucket'));
    expect(listBucket).toHaveLength(1);
    // IfExists: a GET or HEAD of a missing key carries no s3:prefix, and S3 answers it 404 (not 403) only when
    // ListBucket is allowed; a listing that names a prefix must still name one inside the service's.
    expect(listBucket[0]!.Condition).toEqual({ StringLikeIfExists: { 's3:prefix': `${PREFIX}/*` } });
    // A condition on a key the request never carries would deny every call: see docs/storage.md.
    const uploads = statements.filter((statement) => list(statement.Action).includes('s3:ListBucketMultipartUploads'));
    expect(uploads).toHaveLength(1);
    expect(JSON.stringify(uploads[0]!.Condition ?? {})).not.toContain('s3:prefix');
  });

  it('allows every call the service makes inside the prefix (uploads, results, staging)', () => {
    for (const key of [`${PREFIX}/uploads/0f3c-file`, `${PREFIX}/results/0f3c.webp`, `${PREFIX}/staging/task-1/0f3c`]) {
      for (const [call, action, resource, context] of needs(key))
        expect({ call, key, allowed: allows(action, resource, context) }).toEqual({ call, key, allowed: true });
    }
    expect(allows('s3:ListBucket', BUCKET_ARN, { 's3:prefix': `${PREFIX}/` })).toBe(true);
    expect(allows('s3:ListBucketMultipartUploads', BUCKET_ARN)).toBe(true);
  });

  it('denies the same calls outside the prefix, on other buckets, and listings of another prefix', () => {
    for (const key of ['other/uploads/x', `${PREFIX}-other/uploads/x`, `${PREFIX}`, 'uploads/x']) {
      for (const [call, action, resource, context] of needs(key))
        expect({ call, key, allowed: allows(action, resource, context) }).toEqual({ call, key, allowed: false });
    }
    // A listing naming no prefix is allowed (IfExists, see above); it shows key names, never objects.
    expect(allows('s3:ListBucket', BUCKET_ARN)).toBe(true);
    expect(allows('s3:ListBucket', BUCKET_ARN, { 's3:prefix': '' })).toBe(false);
    expect(allows('s3:GetObject', `arn:aws:s3:::other-bucket/${PREFIX}/uploads/x`)).toBe(false);
    expect(allows('s3:ListBucketMultipartUploads', 'arn:aws:s3:::other-bucket')).toBe(false);
    for (const action of [
      's3:DeleteBucket',
      's3:PutBucketPolicy',
      's3:PutLifecycleConfiguration',
      's3:PutObjectAcl',
      's3:GetObjectVersion',
      's3:DeleteObjectVersion',
    ]) {
      expect(allows(action, BUCKET_ARN) || allows(action, `arn:aws:s3:::${BUCKET}/${PREFIX}/uploads/x`)).toBe(false);
    }
  });
});

interface LifecycleRule {
  ID: string;
  Status: string;
  Filter?: { Prefix?: string };
  Prefix?: string;
  Expiration?: { Days?: number; Date?: string };
  AbortIncompleteMultipartUpload?: { DaysAfterInitiation: number };
}

describe('S3 bucket lifecycle (safety net behind the service sweep)', () => {
  const { Rules: rules } = JSON.parse(read('deploy/ecs/s3-lifecycle.json')) as { Rules: LifecycleRule[] };

  it('every rule is enabled and filtered to a prefix inside the service prefix (never the whole bucket)', () => {
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules.map((rule) => rule.ID)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.Status).toBe('Enabled');
      expect(rule.Prefix).toBeUndefined(); // the legacy top-level Prefix; Filter is the current form
      expect(Object.keys(rule.Filter ?? {})).toEqual(['Prefix']); // a tag or size filter would not work with AbortIncompleteMultipartUpload
      expect(rule.Filter!.Prefix!.startsWith(`${PREFIX}/`)).toBe(true);
    }
  });

  it('aborts incomplete multipart uploads under the prefix after one day', () => {
    const abort = rules.filter((rule) => rule.AbortIncompleteMultipartUpload);
    expect(abort).toHaveLength(1);
    expect(abort[0]!.Filter!.Prefix).toBe(`${PREFIX}/`);
    expect(abort[0]!.AbortIncompleteMultipartUpload!.DaysAfterInitiation).toBe(1);
  });

  it('expires staging objects after one day, and uploads and results one day after the default retention (7 days)', () => {
    const expiring = Object.fromEntries(rules.filter((rule) => rule.Expiration).map((rule) => [rule.Filter!.Prefix, rule.Expiration]));
    // Uploads age from their upload, results from their last use (a cache hit copies a result onto itself),
    // as RETENTION_SECONDS counts: the rule only catches what a failed sweep left behind.
    expect(expiring).toEqual({
      [`${PREFIX}/staging/`]: { Days: 1 },
      [`${PREFIX}/uploads/`]: { Days: 8 },
      [`${PREFIX}/results/`]: { Days: 8 },
    });
  });
});

interface ComposeService {
  build?: string | { context: string };
  image?: string;
  restart?: string;
  command?: string[];
  environment: Record<string, string>;
  ports?: string[];
  volumes: string[];
  container_name?: string;
  healthcheck: { test: string[] };
  depends_on: Record<string, { condition: string }>;
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
  const { redis, api: apiService, worker: workerService } = compose.services;

  it('runs Redis with append-only persistence and noeviction, with a health check', () => {
    expect((redis!.command ?? []).join(' ')).toMatch(/--appendonly yes/);
    expect((redis!.command ?? []).join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(redis!.healthcheck.test).toContain('redis-cli');
  });

  it('runs an API that only enqueues on port 8000 and a scalable worker, sharing one volume', () => {
    expect(apiService!.environment.WORKER_CONCURRENCY).toBe('0');
    expect(apiService!.ports).toContain('8000:8000');
    expect(apiService!.environment.REDIS_URL).toMatch(/^redis:\/\/redis:6379/);
    expect(workerService!.command).toEqual(['node', 'dist/src/worker.js']);
    expect(workerService!.ports).toBeUndefined();
    expect(workerService!.container_name).toBeUndefined();
    const volumeOf = (service: ComposeService) => service.volumes.find((entry) => entry.endsWith(':/data'));
    expect(volumeOf(apiService!)).toBe(volumeOf(workerService!));
    expect(compose.volumes).toHaveProperty(volumeOf(apiService!)!.split(':')[0]!);
  });

  it('builds the worker from the same context into the same image as the API', () => {
    expect(apiService!.build).toBe('.');
    expect(workerService!.build).toEqual(apiService!.build);
    expect(workerService!.image).toBe(apiService!.image);
  });

  it('restarts every service after a crash or a Docker restart, unless it was stopped', () => {
    for (const service of [redis, apiService, workerService]) expect(service!.restart).toBe('unless-stopped');
  });

  it('waits for a healthy Redis and checks the API with node', () => {
    expect(apiService!.depends_on.redis!.condition).toBe('service_healthy');
    expect(workerService!.depends_on.redis!.condition).toBe('service_healthy');
    expect(apiService!.healthcheck.test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
  });
});

describe('Dockerfile', () => {
  // Continuation lines joined, as Docker reads them.
  const text = read('Dockerfile').replace(/\\\n\s*/g, ' ');
  const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)];

  it('is multi-stage, on a current Node LTS slim image, non-root, with jemalloc preloaded', () => {
    expect(froms.length).toBe(2);
    for (const from of froms) expect(from[1]).toMatch(/^node:(22|24)-slim$/);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/LD_PRELOAD=\/usr\/local\/lib\/libjemalloc\.so\.2/);
    expect(text).toMatch(/libjemalloc2/);
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it('checks health with node, exposes 8000 and starts node directly', () => {
    expect(text).toMatch(/^HEALTHCHECK .*CMD \["node", "-e", "fetch\(/m);
    expect(text).toMatch(/^EXPOSE 8000$/m);
    expect(text).toMatch(/^CMD \["node", "dist\/src\/server\.js"\]$/m);
    expect(text).not.toMatch(/^CMD .*npm/m);
  });

  it('has a .dockerignore that keeps node_modules, data and tests out of the context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['node_modules', 'uploads', 'processed', 'state', 'test', '.git']) expect(ignored).toContain(entry);
  });
});
