{ lambda a:i32[6,1,1]; b:f32[6,50] c:i32[6]. let
    d:f32[6] = fused_cuda[kernel=rows_d125c19f] c b
  in (d,) }
// kernel 0
#include <cuda_fp16.h>
__device__ __forceinline__ float bf16_to_f32(unsigned short v) {
  return __uint_as_float(((unsigned int)v) << 16);
}
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {  // round to nearest even
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // NaN
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
#define ADD(a, b) ((a) + (b))
// all threads of the block combine val with op; every thread gets the result
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = blockDim.x / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();

extern "C" __global__ void rows_d125c19f(const int* __restrict__ in0, const float* __restrict__ in1, float* __restrict__ out, long long rows) {
  __shared__ float red[256];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    long long i0 = row;
    int v0 = in0[i0];
    bool v1 = (v0 < 0);
    int v2 = (v0 + 50);
    int v3 = (v1 ? v2 : v0);
    long long v4 = (v3 < 0 ? 0 : (v3 > 49 ? 49 : v3));
    float v5 = in1[i0 * 50 + v4];
    float v6 = -__int_as_float(0x7f800000);
    for (long long j = threadIdx.x; j < 50; j += blockDim.x) {
      float v8 = in1[i0 * 50 + j];
      v6 = fmaxf(v6, v8);
    }
    BLOCK_REDUCE(v6, fmaxf, v7)
    float v9 = fmax(-__int_as_float(0x7f800000), v7);
    float v10 = (v5 - v9);
    float v11 = 0.f;
    for (long long j = threadIdx.x; j < 50; j += blockDim.x) {
      float v13 = in1[i0 * 50 + j];
      float v14 = (v13 - v9);
      float v15 = exp(v14);
      v11 = ADD(v11, v15);
    }
    BLOCK_REDUCE(v11, ADD, v12)
    float v16 = log(v12);
    float v17 = (v10 - v16);
    float v18 = ((v3 >= 0 && v3 < 50) ? v17 : __int_as_float(0x7fc00000));
    float v19 = (-v18);
    if (threadIdx.x == 0) out[row] = v19;
  }
}
