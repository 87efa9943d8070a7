{ lambda ; a:bf16[5,768] b:bf16[768] c:bf16[768]. let
    d:bf16[5,768] = fused_cuda[kernel=rows_03a95f50] a b c
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

extern "C" __global__ void rows_03a95f50(const unsigned short* __restrict__ in0, const unsigned short* __restrict__ in1, const unsigned short* __restrict__ in2, unsigned short* __restrict__ out, long long rows) {
  __shared__ float red[256];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    long long i0 = row;
    float v1 = 0.f;
    for (long long j = threadIdx.x; j < 768; j += blockDim.x) {
      float v3 = bf16_to_f32(in0[i0 * 768 + j]);
      float v4 = (float)(v3);
      v1 = ADD(v1, v4);
    }
    BLOCK_REDUCE(v1, ADD, v2)
    float v5 = (v2 / 768.0f);
    float v6 = bf16_to_f32(f32_to_bf16((float)(v5)));
    float v8 = 0.f;
    for (long long j = threadIdx.x; j < 768; j += blockDim.x) {
      float v10 = bf16_to_f32(in0[i0 * 768 + j]);
      float v11 = (v10 - v6);
      float v12 = (v11 * v11);
      float v13 = (float)(v12);
      v8 = ADD(v8, v13);
    }
    BLOCK_REDUCE(v8, ADD, v9)
    float v14 = (v9 / 768.0f);
    float v15 = bf16_to_f32(f32_to_bf16((float)(v14)));
    float v16 = (v15 + 1.0013580322265625e-05f);
    float v17 = rsqrt(v16);
    for (long long j = threadIdx.x; j < 768; j += blockDim.x) {
      float v0 = bf16_to_f32(in0[i0 * 768 + j]);
      float v7 = (v0 - v6);
      float v18 = (v7 * v17);
      float v19 = bf16_to_f32(in1[j]);
      float v20 = (v18 * v19);
      float v21 = bf16_to_f32(in2[j]);
      float v22 = (v20 + v21);
      out[row * 768 + j] = f32_to_bf16(v22);
    }
  }
}
