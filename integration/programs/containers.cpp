// C++ containers on the shared heap: vector growth, map of strings,
// unordered_map, shared_ptr, string concatenation.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

int main() {
    std::vector<long> v;
    for (long i = 0; i < 1000000; i++) v.push_back(i * i % 1009);
    long s = 0;
    for (long x : v) s += x;
    std::printf("vector %zu %ld\n", v.size(), s);

    std::map<int, std::string> m;
    for (int i = 0; i < 20000; i++) m[(i * 7) % 20011] = "value-" + std::to_string(i);
    std::size_t chars = 0;
    for (auto &kv : m) chars += kv.second.size() + kv.first % 3;
    std::printf("map %zu %zu %s\n", m.size(), chars, m.rbegin()->second.c_str());

    std::unordered_map<std::string, int> counts;
    for (int i = 0; i < 50000; i++) counts["k" + std::to_string(i % 977)]++;
    long weighted = 0;
    for (auto &kv : counts) weighted += kv.second * (long)kv.first.size();
    std::printf("unordered %zu %ld\n", counts.size(), weighted);

    std::vector<std::shared_ptr<std::string>> shared;
    std::string all;
    for (int i = 0; i < 300; i++) {
        shared.push_back(std::make_shared<std::string>(std::to_string(i * 31)));
        all += *shared.back();
    }
    std::printf("strings %zu %s\n", all.size(), all.substr(all.size() - 12).c_str());
    auto owned = std::make_unique<int[]>(4096);
    for (int i = 0; i < 4096; i++) owned[i] = i % 13;
    long t = 0;
    for (int i = 0; i < 4096; i++) t += owned[i];
    std::printf("unique %ld\n", t);
    return 0;
}
