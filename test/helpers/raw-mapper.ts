import type { ContentType } from '../../plugin/config/load.js';
import { tagFor, tagSuffix } from '../../plugin/output/sink.js';
import type { MapContext, RecordMapper } from '../../plugin/transform/mapper.js';

const eventTime: Record<ContentType, string> = { alerts: 'lastUpdateTime', host: 'lastSeen', vulnerabilities: 'lastSeenTimestamp', machineActions: 'lastUpdateDateTimeUtc', hunting: 'time' };

/** Passes the raw entity on as the record, with the contract's tags: collection tests look at what the API served. */
export class RawMapper implements RecordMapper {
  map(content: ContentType, entity: Record<string, unknown>, ctx: MapContext) {
    const t = Date.parse(String(entity[eventTime[content]] ?? ''));
    const time = Number.isNaN(t) ? ctx.writeTime : t;
    const tags = content === 'host' ? [tagSuffix.hostSyslog, tagSuffix.hostAssets] : [tagSuffix[content]];
    return tags.map((s) => ({ tag: tagFor(ctx.tagPrefix, s), time, record: entity }));
  }
}
