// Where checkpoints live: a directory (each checkpoint a subdirectory written under a temporary name,
// flushed to disk and renamed into place) or a NATS JetStream object store bucket (each file an
// object; the meta object is written last, so a checkpoint without it is ignored). Both keep the same
// names.
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Objm, type ObjectStore } from '@nats-io/obj';
import {
  parseObjectUrl,
  syncDirectory,
  uniqueSibling,
  writeFileAtomic,
  writeFileSynced,
  type NatsConnection,
} from '@tfjs-ddp/common';

export interface CheckpointStorage {
  readonly location: string;
  /** Writes the files of checkpoint `name` so that it appears whole or not at all; the last file marks it complete. */
  write(name: string, files: { name: string; data: Uint8Array }[]): Promise<string>;
  /** Names of the complete checkpoints, oldest first. */
  list(prefix: string, marker: string): Promise<string[]>;
  read(name: string, file: string): Promise<Uint8Array>;
  remove(name: string): Promise<void>;
  /** A file beside the checkpoints (the completed marker), replaced whole or not at all. */
  putFile(file: string, data: Uint8Array): Promise<void>;
  /** False only when the file is absent; one that is there but cannot be read is an error naming it. */
  hasFile(file: string): Promise<boolean>;
  removeFile(file: string): Promise<void>;
}

export class DirectoryStorage implements CheckpointStorage {
  constructor(readonly location: string) {}

  async write(name: string, files: { name: string; data: Uint8Array }[]): Promise<string> {
    await mkdir(this.location, { recursive: true });
    const final = join(this.location, name);
    const tmp = uniqueSibling(final);
    try {
      await mkdir(tmp);
      for (const f of files) await writeFileSynced(join(tmp, f.name), f.data);
      await syncDirectory(tmp);
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await syncDirectory(this.location);
    return final;
  }

  async list(prefix: string): Promise<string[]> {
    try {
      return (await readdir(this.location)).filter((n) => n.startsWith(prefix)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async read(name: string, file: string): Promise<Uint8Array> {
    return new Uint8Array(await readFile(join(this.location, name, file)));
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.location, name), { recursive: true, force: true });
  }

  async putFile(file: string, data: Uint8Array): Promise<void> {
    await writeFileAtomic(join(this.location, file), data);
  }

  async hasFile(file: string): Promise<boolean> {
    const path = join(this.location, file);
    try {
      await readFile(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new Error(
        `cannot read ${path}: ${(err as Error).message}; it must be a readable file (or absent) for the job to know whether its last run completed`,
        { cause: err },
      );
    }
  }

  async removeFile(file: string): Promise<void> {
    await rm(join(this.location, file), { force: true });
  }
}

export class ObjectStoreStorage implements CheckpointStorage {
  private store?: ObjectStore;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(
    private readonly nc: NatsConnection,
    readonly location: string,
  ) {
    const { bucket, name } = parseObjectUrl(location.endsWith('/') ? location : `${location}/`);
    this.bucket = bucket;
    this.prefix = name ? `${name.replace(/\/$/, '')}/` : '';
  }

  private async os(): Promise<ObjectStore> {
    try {
      this.store ??= await new Objm(this.nc).create(this.bucket);
    } catch (err) {
      throw new Error(
        `cannot open the checkpoint bucket ${this.bucket} (${this.location}): ${(err as Error).message}; is JetStream enabled on the NATS server?`,
        { cause: err },
      );
    }
    return this.store;
  }

  async write(name: string, files: { name: string; data: Uint8Array }[]): Promise<string> {
    const os = await this.os();
    for (const f of files) await os.putBlob({ name: `${this.prefix}${name}/${f.name}` }, f.data);
    return `${this.location.replace(/\/$/, '')}/${name}`;
  }

  async list(prefix: string, marker: string): Promise<string[]> {
    const os = await this.os();
    const names = (await os.list()).filter((o) => !o.deleted).map((o) => o.name);
    const complete = names
      .filter((n) => n.startsWith(`${this.prefix}${prefix}`) && n.endsWith(`/${marker}`))
      .map((n) => n.slice(this.prefix.length, n.length - marker.length - 1));
    return complete.sort();
  }

  async read(name: string, file: string): Promise<Uint8Array> {
    const data = await (await this.os()).getBlob(`${this.prefix}${name}/${file}`);
    if (!data) throw new Error(`${this.location}: object ${this.prefix}${name}/${file} is missing`);
    return data;
  }

  async remove(name: string): Promise<void> {
    const os = await this.os();
    for (const o of await os.list())
      if (!o.deleted && o.name.startsWith(`${this.prefix}${name}/`)) await os.delete(o.name);
  }

  async putFile(file: string, data: Uint8Array): Promise<void> {
    await (await this.os()).putBlob({ name: `${this.prefix}${file}` }, data);
  }

  async hasFile(file: string): Promise<boolean> {
    const os = await this.os();
    try {
      const info = await os.info(`${this.prefix}${file}`);
      return info !== null && !info.deleted;
    } catch (err) {
      throw new Error(`cannot read object ${this.prefix}${file} of ${this.location}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async removeFile(file: string): Promise<void> {
    if (await this.hasFile(file)) await (await this.os()).delete(`${this.prefix}${file}`);
  }
}
