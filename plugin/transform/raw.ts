import type { ContentType } from '../config/load.js';
import { tagFor, tagSuffix } from '../output/sink.js';
import type { MapContext, RecordMapper } from './mapper.js';

const eventTime: Record<ContentType, string> = { alerts: 'lastUpdateTime', host: 'lastSeen', vulnerabilities: 'lastSeenTimestamp' };

/** Raw entities with the record envelope only: used until declarative transforms are loaded. */
export class RawMapper implements RecordMapper {
  map(content: ContentType, entity: Record<string, unknown>, ctx: MapContext) {
    const t = Date.parse(String(entity[eventTime[content]] ?? ''));
    const time = Number.isNaN(t) ? ctx.writeTime : t;
    const tags = content === 'host' ? [tagSuffix.hostSyslog, tagSuffix.hostAssets] : [content === 'alerts' ? tagSuffix.alerts : tagSuffix.vulnerabilities];
    return tags.map((s) => ({ tag: tagFor(ctx.tagPrefix, s), time, record: entity }));
  }
}
