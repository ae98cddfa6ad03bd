import type { ContentType } from '../config/load.js';
import type { OutRecord } from '../output/sink.js';

export interface MapContext {
  connector: string;
  tenant: string;
  tagPrefix: string;
  /** emit time, epoch ms (write_time) */
  writeTime: number;
}

/** Turns one Defender entity into the records the pipeline receives (host yields two: Syslog and Assets). */
export interface RecordMapper {
  map(content: ContentType, entity: Record<string, unknown>, ctx: MapContext): OutRecord[];
}
