/* Image config JSON: the input is the config given to lbx_image_add (what
 * load and pull hand it after their digest checks), recorded for no layers
 * and for one and two copies of an indexed empty layer, with a name. */
#include "fuzz.h"
#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* sha256 of 1024 zero bytes: the empty layer tar indexed at start-up, as
 * the seed configs list it */
#define EMPTY_DIFF_ID "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

static lbx_store *store;

static void
setup(void)
{
  store = fuzz_store();
  static const uint8_t zeros[1024];
  fuzz_src src = {zeros, sizeof zeros, 0, 0};
  lbx_layer_src l = {"empty.tar", fuzz_src_read, &src, NULL, EMPTY_DIFF_ID, 0, 0};
  lbx_layer_result res;
  lbx_err *err = NULL;
  if (lbx_index_layer(store, &l, &res, &err) < 0) {
    fprintf(stderr, "fuzz: %s\n", err->msg);
    abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!store)
    setup();
  lbx_image_layer layers[2] = {
      {EMPTY_DIFF_ID, "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
       "application/vnd.oci.image.layer.v1.tar", 1024},
      {EMPTY_DIFF_ID, "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
       "application/vnd.oci.image.layer.v1.tar", 1024},
  };
  const char *names[] = {"localhost/fuzz:latest"};
  for (size_t n = 0; n <= 2; n++) {
    char id[LBX_DIGEST_HEX];
    lbx_err *err = NULL;
    /* the input as the manifest too: only hashed */
    if (lbx_image_add(store, (const char *)data, size, n == 1 ? (const char *)data : NULL, size,
                      layers, n, names, 1, id, &err) < 0) {
      FUZZ_CHECK(err && err->msg);
      lbx_error_free(err);
      continue;
    }
    FUZZ_CHECK(!err && strlen(id) == 64);
    char found[LBX_DIGEST_HEX];
    FUZZ_CHECK(lbx_image_resolve(store, "localhost/fuzz", found, NULL) == 0);
    FUZZ_CHECK(strcmp(found, id) == 0);
    lbx_image_row row = {0};
    char *config = NULL;
    size_t config_len = 0;
    FUZZ_CHECK(lbx_store_image_get(store, id, &row, &config, &config_len, NULL) == 0);
    FUZZ_CHECK(config_len == size && memcmp(config, data, size) == 0);
    FUZZ_CHECK(row.nlayers == n);
    free(config);
    lbx_image_row_clear(&row);
  }
  fuzz_drop_images(store);
  return 0;
}
