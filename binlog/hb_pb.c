/*
 * hb_pb.c - hb_value_t <-> herald.Value.
 */
#include "hb_pb.h"

#include <string.h>

int hb_value_to_pb(const hb_value_t *v, Herald__Value *pv, hb_pb_copy_fn copy,
                   void *ud) {
  ProtobufCBinaryData bin = {v->len, (uint8_t *)v->s};
  herald__value__init(pv);
  switch ((hb_vkind_t)v->kind) {
  case HB_V_ABSENT:
    return 0;
  case HB_V_NULL:
    pv->kind_case = HERALD__VALUE__KIND_NULL;
    pv->null = 1;
    break;
  case HB_V_INT:
    pv->kind_case = HERALD__VALUE__KIND_INT;
    pv->int_ = v->n.i;
    break;
  case HB_V_UINT:
    pv->kind_case = HERALD__VALUE__KIND_UINT;
    pv->uint = v->n.u;
    break;
  case HB_V_FLOAT:
    pv->kind_case = HERALD__VALUE__KIND_FLT;
    pv->flt = v->n.f;
    break;
  case HB_V_DOUBLE:
    pv->kind_case = HERALD__VALUE__KIND_DBL;
    pv->dbl = v->n.d;
    break;
  case HB_V_BYTES:
    pv->kind_case = HERALD__VALUE__KIND_BIN;
    pv->bin = bin;
    break;
  case HB_V_BADTEXT:
    pv->kind_case = HERALD__VALUE__KIND_BADTEXT;
    pv->badtext = bin;
    break;
  case HB_V_DECIMAL:
    pv->kind_case = HERALD__VALUE__KIND_DECIMAL;
    pv->decimal = copy(ud, v->s, v->len);
    break;
  case HB_V_JSON:
    pv->kind_case = HERALD__VALUE__KIND_JSON;
    pv->json = copy(ud, v->s, v->len);
    break;
  case HB_V_JSON_DIFF:
    pv->kind_case = HERALD__VALUE__KIND_JSON_DIFF;
    pv->json_diff = copy(ud, v->s, v->len);
    break;
  case HB_V_DATE:
  case HB_V_TIME:
  case HB_V_DATETIME:
  case HB_V_TIMESTAMP:
    pv->kind_case = HERALD__VALUE__KIND_TEMPORAL;
    pv->temporal = copy(ud, v->s, v->len);
    break;
  case HB_V_ENUM:
  case HB_V_SET:
    if (v->s == NULL) { /* labels unknown: the index or bitmask */
      pv->kind_case = HERALD__VALUE__KIND_UINT;
      pv->uint = v->n.u;
      break;
    }
    /* fall through */
  case HB_V_STRING:
    pv->kind_case = HERALD__VALUE__KIND_STR;
    pv->str = copy(ud, v->s, v->len);
    break;
  }
  return 1;
}

void hb_value_from_pb(const Herald__Value *pv, hb_value_t *v) {
  memset(v, 0, sizeof(*v));
  switch (pv->kind_case) {
  case HERALD__VALUE__KIND_NULL:
    v->kind = HB_V_NULL;
    break;
  case HERALD__VALUE__KIND_INT:
    v->kind = HB_V_INT;
    v->n.i = pv->int_;
    break;
  case HERALD__VALUE__KIND_UINT:
    v->kind = HB_V_UINT;
    v->n.u = pv->uint;
    break;
  case HERALD__VALUE__KIND_DBL:
    v->kind = HB_V_DOUBLE;
    v->n.d = pv->dbl;
    break;
  case HERALD__VALUE__KIND_FLT:
    v->kind = HB_V_FLOAT;
    v->n.f = pv->flt;
    break;
  case HERALD__VALUE__KIND_STR:
    v->kind = HB_V_STRING;
    v->s = pv->str;
    break;
  case HERALD__VALUE__KIND_DECIMAL:
    v->kind = HB_V_DECIMAL;
    v->s = pv->decimal;
    break;
  case HERALD__VALUE__KIND_TEMPORAL:
    v->kind = HB_V_DATETIME;
    v->s = pv->temporal;
    break;
  case HERALD__VALUE__KIND_JSON:
    v->kind = HB_V_JSON;
    v->s = pv->json;
    break;
  case HERALD__VALUE__KIND_JSON_DIFF:
    v->kind = HB_V_JSON_DIFF;
    v->s = pv->json_diff;
    break;
  case HERALD__VALUE__KIND_BIN:
    v->kind = HB_V_BYTES;
    v->s = (const char *)pv->bin.data;
    v->len = (uint32_t)pv->bin.len;
    return;
  case HERALD__VALUE__KIND_BADTEXT:
    v->kind = HB_V_BADTEXT;
    v->s = (const char *)pv->badtext.data;
    v->len = (uint32_t)pv->badtext.len;
    return;
  default:
    v->kind = HB_V_ABSENT;
    return;
  }
  if (v->s)
    v->len = (uint32_t)strlen(v->s);
}
